"""TAU (Barbulescu & Triantafillou): selective gradient ascent until the forget set's
mean g falls below `tau_switch`, then task arithmetic with lambda `tau_lam` relative to
the weights at the switch (descent on the whole forget set, the optimizer's state
carried over)."""

from __future__ import annotations

import numpy as np
import torch

from memscan.unlearn.config import UnlearnConfig
from memscan.unlearn.phase import Phase
from memscan.unlearn.sga import SelectiveAscent
from memscan.unlearn.ta import TaskArithmetic

NAME = "tau"


class SelectiveAscentThenTaskArithmetic(SelectiveAscent):
    def __init__(self, config: UnlearnConfig):
        super().__init__(config.gamma, config.skip_below_lo, config.strict_stop)
        self.switch_below, self.lam = config.tau_switch, config.tau_lam

    def handover(self, g: np.ndarray, model: torch.nn.Module) -> tuple[Phase, str] | None:
        if g.mean() < self.switch_below:
            # the edited model equals the current one until TA's first update
            return TaskArithmetic(model, self.lam), f"mean g below {self.switch_below}, switching to task arithmetic"
        return None


def start(config: UnlearnConfig, model: torch.nn.Module, saved: dict | None = None) -> Phase:
    if saved is not None:  # the run had switched before its checkpoint
        return TaskArithmetic(model, config.tau_lam, saved)
    return SelectiveAscentThenTaskArithmetic(config)
