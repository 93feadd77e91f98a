"""Copies of a model's weights kept on the CPU, restored bit for bit: the implanted
model a sweep or demo restarts every method from, TA's base, the last good epoch.
Of a sharded model (model/sharding.py), each rank copies and restores its shards."""

from __future__ import annotations

import hashlib

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


@torch.no_grad()
def weights_digest(model: torch.nn.Module) -> str:
    """A digest of every parameter's name, dtype, shape and bytes: two models (or one
    model at two times) with equal digests hold the same weights, bit for bit."""
    digest = hashlib.blake2b(digest_size=16)
    for name, p in model.named_parameters():
        tensor = local(p.detach()).to("cpu").contiguous()
        digest.update(f"{name} {tensor.dtype} {tuple(tensor.shape)}".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()
