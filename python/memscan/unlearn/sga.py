"""SGA, selective gradient ascent (Barbulescu & Triantafillou), as the authors ran it:
every epoch re-score the forget set; within each micro-batch ascend on the sequences
still memorized (g >= gamma) plus that micro-batch's most memorized one; stop as GA
does (mean g < mu_u).

memscan's variants, each a named option: `skip_below_lo` never ascends on a sequence
already below the interval (so no sequence is pushed further into over-unlearning), and
`strict_stop` also waits until no sequence is above the interval's top."""

from __future__ import annotations

import numpy as np
import torch

from memscan.unlearn.config import UnlearnConfig
from memscan.unlearn.phase import Phase, Targets, below_mu_u

NAME = "sga"


class SelectiveAscent(Phase):
    label = "selective-ascent"

    def __init__(self, gamma: float | None, skip_below_lo: bool = False, strict_stop: bool = False):
        self.gamma = gamma  # None: the interval's hi
        self.skip_below_lo, self.strict_stop = skip_below_lo, strict_stop

    def micro_batches(self, g: np.ndarray, targets: Targets, size: int) -> list[list[int]]:
        interval = targets.interval
        gamma = interval.hi if self.gamma is None else self.gamma
        chosen = []
        for batch in super().micro_batches(g, targets, size):
            picked = {i for i in batch if g[i] >= gamma} | {max(batch, key=lambda i: g[i])}
            if self.skip_below_lo:
                picked = {i for i in picked if g[i] >= interval.lo}
            if picked:
                chosen.append(sorted(picked))
        return chosen

    def stop_reason(self, g: np.ndarray, el: np.ndarray | None, targets: Targets) -> str | None:
        reason = below_mu_u(g, el, targets)
        interval = targets.interval
        if reason and self.strict_stop:
            above = int((g > interval.hi).sum())
            return None if above else f"no sequence above hi {interval.hi:.4f} and {reason}"
        return reason


def start(config: UnlearnConfig, model: torch.nn.Module, saved: dict | None = None) -> Phase:
    return SelectiveAscent(config.gamma, config.skip_below_lo, config.strict_stop)
