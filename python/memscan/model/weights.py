"""Copies of a model's weights kept on the CPU, restored bit for bit: the implanted
model a sweep or demo restarts every method from, TA's base, the last good epoch.
Of a sharded model (model/sharding.py), each rank copies and restores its shards."""

from __future__ import annotations

import torch

from memscan.model.sharding import local


def cpu_copy(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Every parameter, copied to the CPU in its own dtype."""
    return {name: local(p.detach()).to("cpu", copy=True) for name, p in model.named_parameters()}


@torch.no_grad()
def load_weights(model: torch.nn.Module, weights: dict[str, torch.Tensor]) -> None:
    """Copy `weights` (from `cpu_copy`) back into the model's parameters, bit for bit."""
    for name, p in model.named_parameters():
        local(p).copy_(weights[name])
