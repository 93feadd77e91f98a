"""Task arithmetic (Ilharco et al.): theta_0 + c (theta - theta_0), with c = -lambda to negate
what fine-tuning on the forget set added.

theta_0 stays on the CPU in the model's own dtype, so the accelerator holds one copy
of the weights; while the edited model is evaluated, the fine-tuned weights wait on
the CPU too and are copied back bit for bit.
"""

from __future__ import annotations

from contextlib import contextmanager

import torch


def cpu_copy(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Every parameter, copied to the CPU in its own dtype."""
    return {name: p.detach().to("cpu", copy=True) for name, p in model.named_parameters()}


@torch.no_grad()
def load_weights(model: torch.nn.Module, weights: dict[str, torch.Tensor]) -> None:
    """Copy `weights` (from `cpu_copy`) back into the model's parameters, bit for bit."""
    for name, p in model.named_parameters():
        p.copy_(weights[name])


class TaskArithmetic:
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
    def applied(self, model: torch.nn.Module):
        """The edited model for the duration of the block, then the fine-tuned one again."""
        tuned = cpu_copy(model)
        self.apply(model)
        try:
            yield model
        finally:
            load_weights(model, tuned)
