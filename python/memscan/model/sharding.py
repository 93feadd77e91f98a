"""FSDP for unlearning a model whose training state does not fit one device.

`unlearn --fsdp`, launched as N processes (model/ranks.py), shards every decoder layer
and the rest of the model with torch's `fully_shard` (FSDP2): each rank keeps 1/N of
the fp32 master weights, of their gradients and of Adam's state, and gathers a layer's
weights only while it runs. Two rules follow:

- Every forward and backward pass is collective, so ranks step in lockstep: an update
  gives every rank as many micro-batches (a rank short of work repeats one at weight 0,
  unlearn/phase.Update), and the reduce-scatter averages the ranks' gradients.
- Scoring (g, EL, MIAU) runs with the whole weights gathered on every rank for the
  pass (`gathered`), so ranks score their own blocks of sequences without lockstep.
  That costs one full copy of the weights per device while scoring, not the 4x of
  weights, gradients and Adam's two moments that training holds.

Checkpoints and the output model hold whole tensors (gathered to rank 0), so a sharded
run resumes on any number of processes, sharded or not. Outside FSDP every function
here is the plain single-copy operation.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch


def shard(model: torch.nn.Module) -> None:
    """Shard `model` across the launched processes: each of its no-split blocks (the
    decoder layers transformers names in `_no_split_modules`), then the rest."""
    from torch.distributed import get_world_size
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard

    device = next(model.parameters()).device
    mesh = init_device_mesh(device.type, (get_world_size(),))
    blocks = set(getattr(model, "_no_split_modules", None) or ())
    for module in model.modules():
        if type(module).__name__ in blocks:
            fully_shard(module, mesh=mesh)
    fully_shard(model, mesh=mesh)


def is_sharded(model: torch.nn.Module) -> bool:
    if not torch.distributed.is_available():
        return False
    from torch.distributed.fsdp import FSDPModule

    return isinstance(model, FSDPModule)


def local(tensor: torch.Tensor) -> torch.Tensor:
    """This rank's shard of a sharded parameter or gradient; any other tensor as it is."""
    from torch.distributed.tensor import DTensor

    return tensor.to_local() if isinstance(tensor, DTensor) else tensor


@contextmanager
def gathered(model: torch.nn.Module) -> Iterator[None]:
    """The whole weights on every rank for the duration of the block (a collective
    on entry and on exit), so each rank may run any number of forward passes alone."""
    if not is_sharded(model):
        yield
        return
    from torch.distributed.fsdp import FSDPModule

    modules = [m for m in model.modules() if isinstance(m, FSDPModule)]
    for module in modules:
        module.set_reshard_after_forward(False, recurse=False)
        module.unshard()
    try:
        yield
    finally:
        for module in modules:
            module.reshard()
            module.set_reshard_after_forward(True, recurse=False)


def _options():
    from torch.distributed.checkpoint.state_dict import StateDictOptions

    return StateDictOptions(full_state_dict=True, cpu_offload=True)


def full_weights(model: torch.nn.Module) -> dict[str, Any]:
    """The model's whole state dict on the CPU (on rank 0; empty on the other ranks of a
    sharded model). Collective when sharded: every rank calls it."""
    from torch.distributed.checkpoint.state_dict import get_model_state_dict

    return get_model_state_dict(model, options=_options())


def load_full_weights(model: torch.nn.Module, weights: dict[str, Any]) -> None:
    """Load a whole state dict (`full_weights`), each rank keeping its shard."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, set_model_state_dict

    set_model_state_dict(model, weights, options=StateDictOptions(full_state_dict=True))


def optimizer_state(model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> dict:
    """The optimizer's whole state, keyed by parameter names (so it loads into a model
    sharded over any number of ranks, or none); on rank 0 when sharded."""
    from torch.distributed.checkpoint.state_dict import get_optimizer_state_dict

    return get_optimizer_state_dict(model, optimizer, options=_options())


def load_optimizer_state(model: torch.nn.Module, optimizer: torch.optim.Optimizer, state: dict) -> None:
    from torch.distributed.checkpoint.state_dict import StateDictOptions, set_optimizer_state_dict

    set_optimizer_state_dict(model, optimizer, state, options=StateDictOptions(full_state_dict=True))


def whole_parameters(model: torch.nn.Module, shards: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Per-parameter tensors held as this rank's shards (`weights.cpu_copy` of a sharded
    model) joined into whole CPU tensors on every rank; collective. Unsharded: as given."""
    if not is_sharded(model):
        return shards
    from torch.distributed.tensor import DTensor

    whole = {}
    for name, p in _sharded_parameters(model):
        joined = DTensor.from_local(
            shards[name].to(p.device), p.device_mesh, p.placements, shape=p.shape, stride=p.stride()
        )
        whole[name] = joined.full_tensor().cpu()
    return whole


def parameter_shards(model: torch.nn.Module, whole: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Whole per-parameter CPU tensors cut to this rank's shards (the inverse of
    `whole_parameters`; no communication). Unsharded: as given."""
    if not is_sharded(model):
        return whole
    from torch.distributed.tensor import distribute_tensor

    return {
        name: distribute_tensor(whole[name].to(p.device), p.device_mesh, p.placements, src_data_rank=None)
        .to_local()
        .cpu()
        for name, p in _sharded_parameters(model)
    }


def _sharded_parameters(model: torch.nn.Module) -> Iterator[tuple[str, Any]]:
    """The parameters of a sharded model, as the DTensors they are."""
    yield from model.named_parameters()
