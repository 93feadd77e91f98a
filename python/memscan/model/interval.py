"""The acceptable interval learned from unseen text, and the forgetting metric c(D_f)
(docs/definitions.md)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from memscan.errors import UserError

MIN_UNSEEN = 20  # below this the 2.5% / 97.5% quantiles are the sample's extremes or worse
QUANTILES = (0.025, 0.975)


@dataclass(frozen=True)
class Interval:
    """What "not memorized" looks like: g-values of unseen text fall in [lo, hi]; mu_u is their mean."""

    lo: float
    hi: float
    mu_u: float
    source: str  # "unseen quantiles" or "fixed"
    n_unseen: int

    def to_dict(self) -> dict:
        return asdict(self)


def check_unseen_count(count: int) -> None:
    if count < MIN_UNSEEN:
        raise UserError(
            f"the unseen set holds {count} sequences; its quantiles need at least {MIN_UNSEEN} "
            "(add unseen sequences from the same source)"
        )


def fit_interval(
    unseen_g: Sequence[float] | np.ndarray, fixed: tuple[float, float] | None = None, quantiles=QUANTILES
) -> Interval:
    """The 2.5% and 97.5% quantiles of unseen g (or a fixed [lo, hi]), and their mean."""
    g = np.asarray(unseen_g, dtype=np.float64)
    check_unseen_count(g.size)
    if fixed is not None:
        lo, hi = fixed
        if not lo <= hi:
            raise UserError(f"the interval [{lo}, {hi}] is empty: lo must not exceed hi")
        return Interval(float(lo), float(hi), float(g.mean()), "fixed", int(g.size))
    lo, hi = np.quantile(g, quantiles)
    return Interval(float(lo), float(hi), float(g.mean()), "unseen quantiles", int(g.size))


@dataclass(frozen=True)
class ForgettingQuality:
    """c(D_f) split into still-memorized (above) and over-unlearned (below) sequences,
    beside the average-based verdict the paper argues against."""

    above: int
    below: int
    n: int
    mean: float
    std: float
    gap_to_mu_u: float  # |mean g(D_f) - mu_u|
    average_success: bool  # mean g(D_f) < mu_u

    @property
    def outside(self) -> int:
        return self.above + self.below

    def to_dict(self) -> dict:
        return {**asdict(self), "outside": self.outside}


def forgetting_quality(forget_g: Sequence[float] | np.ndarray, interval: Interval) -> ForgettingQuality:
    g = np.asarray(forget_g, dtype=np.float64)
    if g.size == 0:
        raise UserError("the forget set holds no sequences")
    return ForgettingQuality(
        above=int((g > interval.hi).sum()),
        below=int((g < interval.lo).sum()),
        n=int(g.size),
        mean=float(g.mean()),
        std=float(g.std()),
        gap_to_mu_u=float(abs(g.mean() - interval.mu_u)),
        average_success=bool(g.mean() < interval.mu_u),
    )
