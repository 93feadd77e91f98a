"""GA (Jang et al.): gradient ascent on the whole forget set until its mean g falls below
the unseen mean mu_u (and, when EL is tracked, its mean EL_n below the unseen mean EL_n)."""

from __future__ import annotations

import numpy as np
import torch

from memscan.unlearn.config import UnlearnConfig
from memscan.unlearn.phase import Phase, Targets, below_mu_u

NAME = "ga"


class GradientAscent(Phase):
    label = "ascent"

    def stop_reason(self, g: np.ndarray, el: np.ndarray | None, targets: Targets) -> str | None:
        return below_mu_u(g, el, targets)


def start(config: UnlearnConfig, model: torch.nn.Module, saved: dict | None = None) -> Phase:
    return GradientAscent()
