"""An unlearning run's settings; the defaults are the authors' (docs/definitions.md)."""

from __future__ import annotations

from dataclasses import dataclass

from memscan.errors import UserError
from memscan.model.memorization import G_SCORES

METHODS = ("ga", "sga", "ta", "tau")  # one module each in memscan.unlearn


@dataclass(frozen=True)
class UnlearnConfig:
    method: str
    lr: float = 5e-5
    betas: tuple[float, float] = (0.9, 0.98)
    max_epochs: int = 20
    gamma: float | None = 0.7  # SGA ascends on g >= gamma; None: the interval's hi
    lam: float = 3.0  # TA: theta_0 - lam (theta_ft - theta_0)
    tau_switch: float = 0.5  # TAU: SGA until mean g < this, then TA
    tau_lam: float = 1.0
    score: str = "ma"  # g: ma, el (EL_n) or extraction_strength
    n: int = 10  # EL_n's n, when g is EL or EL is tracked
    track_el: bool = False  # GA also waits for mean EL_n below its unseen mean
    micro_batch: int = 8
    max_ce: float = 100.0  # a mean token CE above this counts as exploding
    seed: int = 0

    def __post_init__(self):
        if self.method not in METHODS:
            raise UserError(f"unknown method {self.method!r} (choose from {', '.join(METHODS)})")
        if self.score not in G_SCORES:
            raise UserError(f"unknown score {self.score!r} for g (choose from {', '.join(G_SCORES)})")

    @property
    def uses_el(self) -> bool:
        return self.score == "el" or self.track_el
