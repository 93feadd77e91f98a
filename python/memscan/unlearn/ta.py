"""TA, task arithmetic (Ilharco et al.) as the authors ran it: gradient ascent on the
whole forget set until its mean g falls below `first_threshold` (0.9; at once if it
starts below), then descent on it with the optimizer's state carried over; after every
update the edited model theta_s - lambda (theta - theta_s) is scored, theta_s the
weights at the switch, and the run stops when its mean g falls below mu_u. The edited
model is the output.

theta_s stays on the CPU in the weights' dtype (fp32 masters while training), so the
accelerator holds one copy of the weights; while the edited model is scored, the
fine-tuned weights wait on the CPU too and are copied back bit for bit.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch

from memscan.model.sharding import local
from memscan.model.weights import cpu_copy, load_weights
from memscan.unlearn.config import UnlearnConfig
from memscan.unlearn.phase import Phase, Targets

NAME = "ta"


class AscentUntil(Phase):
    """Gradient ascent on the whole forget set until mean g < `threshold`, then task arithmetic."""

    label = "ascent"

    def __init__(self, threshold: float, lam: float):
        self.threshold, self.lam = threshold, lam

    def stop_reason(self, g: np.ndarray, el: np.ndarray | None, targets: Targets) -> str | None:
        return None  # the run stops on the edited model, after the switch

    def handover(self, g: np.ndarray, model: torch.nn.Module) -> tuple[Phase, str] | None:
        if g.mean() < self.threshold:
            return TaskArithmetic(model, self.lam), f"mean g below {self.threshold}, switching to task arithmetic"
        return None


class TaskArithmetic(Phase):
    label = "task-arithmetic"
    ascent = False
    keeps_weights = True

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
            weight = local(p)  # this rank's shard, of a sharded model (base holds the same shards)
            weight.copy_(self.edited_weight(name, weight))

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
    if saved is not None:  # the run had switched before its checkpoint
        return TaskArithmetic(model, config.lam, saved)
    return AscentUntil(config.first_threshold, config.lam)
