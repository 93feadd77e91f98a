"""SGA, selective gradient ascent (Barbulescu & Triantafillou): every epoch ascend only on
the sequences still memorized (g >= gamma), always on the most memorized one and never
on one already below the interval; stop when none is above the interval's top and the
mean is below mu_u."""

from __future__ import annotations

import numpy as np
import torch

from memscan.unlearn.config import UnlearnConfig
from memscan.unlearn.phase import Phase, Targets

NAME = "sga"


class SelectiveAscent(Phase):
    label = "selective-ascent"

    def __init__(self, gamma: float | None):
        self.gamma = gamma  # None: the interval's hi

    def select(self, g: np.ndarray, targets: Targets) -> list[int]:
        interval = targets.interval
        gamma = interval.hi if self.gamma is None else self.gamma
        chosen = set(np.flatnonzero(g >= gamma).tolist()) | {int(np.argmax(g))}
        return sorted(i for i in chosen if g[i] >= interval.lo)

    def stop_reason(self, g: np.ndarray, el: np.ndarray | None, targets: Targets) -> str | None:
        mean, interval = float(g.mean()), targets.interval
        if not (g > interval.hi).any() and mean < interval.mu_u:
            return f"no sequence above hi {interval.hi:.4f} and mean g {mean:.4f} < mu_u {interval.mu_u:.4f}"
        return None


def start(config: UnlearnConfig, model: torch.nn.Module, saved: dict | None = None) -> Phase:
    return SelectiveAscent(config.gamma)
