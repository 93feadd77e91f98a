"""TA, task arithmetic (Ilharco et al.): fine-tune on the forget set by descent and
output theta_0 - lambda (theta - theta_0), the edit that negates what fine-tuning added;
g is scored on that edited model after every update, and the run stops when its mean
falls below mu_u.

theta_0 stays on the CPU in the model's own dtype, so the accelerator holds one copy
of the weights; while the edited model is scored, the fine-tuned weights wait on the
CPU too and are copied back bit for bit.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch

from memscan.model.weights import cpu_copy, load_weights
from memscan.unlearn.config import UnlearnConfig
from memscan.unlearn.phase import Phase, Targets

NAME = "ta"


class TaskArithmetic(Phase):
    label = "task-arithmetic"
    ascent = False

    def __init__(self, model: torch.nn.Module, lam: float, base: dict[str, torch.Tensor] | None = None):
        self.coefficient = -lam
        self.base = base if base is not None else cpu_copy(model)

    def edited_weight(self, name: str, weight: torch.Tensor) -> torch.Tensor:
        base = self.base[name].to(weight.device)
        return base + self.coefficient * (weight - base)

    @torch.no_grad()
    def apply(self, model: torch.nn.Module) -> None:
        """Replace the fine-tuned weights by the edited ones, for good."""
        for name, p in model.named_parameters():
            p.copy_(self.edited_weight(name, p))

    @contextmanager
    def scored_weights(self, model: torch.nn.Module) -> Iterator[torch.nn.Module]:
        """The edited model for the duration of the block, then the fine-tuned one again."""
        tuned = cpu_copy(model)
        self.apply(model)
        try:
            yield model
        finally:
            load_weights(model, tuned)

    def stop_reason(self, g: np.ndarray, el: np.ndarray | None, targets: Targets) -> str | None:
        mean, mu_u = float(g.mean()), targets.interval.mu_u
        return f"edited model's mean g {mean:.4f} < mu_u {mu_u:.4f}" if mean < mu_u else None

    def saved_state(self) -> dict[str, torch.Tensor]:
        return self.base

    def finish(self, model: torch.nn.Module) -> None:
        self.apply(model)  # the edited model is the output


def start(config: UnlearnConfig, model: torch.nn.Module, saved: dict | None = None) -> Phase:
    return TaskArithmetic(model, config.lam, saved)
