"""An unlearning run's settings. The defaults are the authors' wherever a choice does
not depend on the model; docs/definitions.md lists every choice beside the authors'
value, and the `paper` preset sets them all to it."""

from __future__ import annotations

from dataclasses import dataclass

from memscan.errors import UserError
from memscan.model.choices import G_SCORES

PAPER_METHODS = ("ga", "sga", "ta", "tau")  # the paper's (Jang et al.'s GA, the authors' three)
BASELINES = ("ga_mismatch", "npo", "gd")  # the papers' GA+Mismatch; NPO and gradient difference beyond them
METHODS = (*PAPER_METHODS, *BASELINES)  # one module each in memscan.unlearn
RETAIN_METHODS = ("ga_mismatch", "gd")  # the methods that step on a retain set too


@dataclass(frozen=True)
class UnlearnConfig:
    method: str
    lr: float = 5e-5
    betas: tuple[float, float] = (0.9, 0.98)
    max_epochs: int = 20  # the authors allow 150 (preset `paper`); the stopping rule ends most runs far earlier
    gamma: float | None = 0.7  # SGA ascends on g >= gamma; None: the interval's hi
    skip_below_lo: bool = False  # memscan's SGA variant: never ascend on a sequence already below lo
    strict_stop: bool = False  # memscan's SGA variant: stop only when none is above hi (and mean g < mu_u)
    first_threshold: float = 0.9  # TA: ascent until mean g < this, then descent and the edit
    lam: float = 3.0  # TA: theta_s - lam (theta - theta_s)
    tau_switch: float = 0.5  # TAU: SGA until mean g < this, then TA
    tau_lam: float = 1.0
    score: str = "ma"  # g: ma, el (EL_n) or extraction_strength
    n: int = 10  # EL_n's n, when g is EL or EL is tracked
    track_el: bool = False  # GA also waits for mean EL_n below its unseen mean
    micro_batch: int = 8  # sequences per micro-batch: the loss averages their mean CEs, SGA selects within each
    max_ce: float = 100.0  # a mean token CE above this counts as exploding
    npo_beta: float = 0.1  # NPO's beta (Zhang et al.'s default)
    retain_weight: float = 1.0  # gradient difference: weight of the retain set's CE
    miau_neighbours: int = 0  # > 0: the paper's MIAU with this many neighbours, recorded every epoch
    # memscan's utility guard (not in the papers): stop before an update that raises the
    # guard text's perplexity above this multiple of the input model's, keeping the epoch before
    max_ppl_ratio: float | None = None
    # memscan's stopping rule (not in the papers): stop as soon as c(D_f) = 0, every forget
    # sequence inside the interval, before a method's own rule (docs/results/operating-point.md)
    stop_inside: bool = False
    seed: int = 0

    def __post_init__(self):
        if self.method not in METHODS:
            raise UserError(f"unknown method {self.method!r} (choose from {', '.join(METHODS)})")
        if self.score not in G_SCORES:
            raise UserError(f"unknown score {self.score!r} for g (choose from {', '.join(G_SCORES)})")
        if self.npo_beta <= 0:
            raise UserError(f"NPO's beta must be above 0, not {self.npo_beta}")
        if self.max_ppl_ratio is not None and not self.max_ppl_ratio > 1.0:
            raise UserError(f"the perplexity limit is a ratio above 1 (e.g. 1.2), not {self.max_ppl_ratio}")
        if not all(0.0 <= b < 1.0 for b in self.betas):
            raise UserError(f"Adam's betas must lie in [0, 1), not {self.betas}")

    @property
    def uses_retain(self) -> bool:
        return self.method in RETAIN_METHODS

    @property
    def uses_el(self) -> bool:
        return self.score == "el" or self.track_el


# Every setting the authors' code fixes that memscan's defaults leave otherwise, by preset.
PRESETS: dict[str, dict] = {
    "default": {},
    "paper": {"max_epochs": 150, "fixed_interval": (0.15, 0.60), "miau_neighbours": 25},
}
