"""GA (Jang et al.): gradient ascent on the whole forget set until its mean g falls below
the unseen mean mu_u (and, when EL is tracked, its mean EL_n below the unseen mean EL_n)."""

from __future__ import annotations

import numpy as np
import torch

from memscan.unlearn.config import UnlearnConfig
from memscan.unlearn.phase import Phase, Targets

NAME = "ga"


class GradientAscent(Phase):
    label = "ascent"

    def stop_reason(self, g: np.ndarray, el: np.ndarray | None, targets: Targets) -> str | None:
        mean, mu_u = float(g.mean()), targets.interval.mu_u
        el_done = el is None or targets.unseen_el_mean is None or float(el.mean()) < targets.unseen_el_mean
        if mean < mu_u and el_done:
            return f"mean g {mean:.4f} < mu_u {mu_u:.4f}" + (
                " and mean EL below its unseen mean" if el is not None else ""
            )
        return None


def start(config: UnlearnConfig, model: torch.nn.Module, saved: dict | None = None) -> Phase:
    return GradientAscent()
