"""Work split across the processes of `accelerate launch` (or torchrun).

Launched with N processes, each rank loads the model on its own device, scores one
contiguous block of the sequences and the blocks are gathered back in order, so the
table is the one a single process writes (each sequence is scored alone, so its
scores do not depend on which rank scored it). An update is data-parallel: each rank
takes the gradient of its block of the micro-batches, and the weighted gradients are
summed over ranks, so every rank steps on the full-batch gradient one process would
have taken (up to the order of the floating-point sums). Outside a launch there is
one rank and nothing is imported from accelerate or torch.distributed.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NoReturn, TypeVar

import pyarrow as pa

T = TypeVar("T")


def launched() -> bool:
    """Whether this process is one of several started by a distributed launcher."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


@dataclass(frozen=True)
class Ranks:
    """This process's place among the launched ones (size 1, rank 0 when not launched)."""

    size: int = 1
    rank: int = 0
    device: str | None = None

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def block(self, n: int) -> range:
        """This rank's contiguous share of n items (sizes differ by at most one)."""
        start = self.rank * n // self.size
        return range(start, (self.rank + 1) * n // self.size)

    def gather(self, part: T) -> list[T]:
        """Every rank's `part`, in rank order, on every rank."""
        if self.size == 1:
            return [part]
        from accelerate.utils import gather_object

        return gather_object([part])

    def sum_value(self, value: float) -> float:
        """The sum of `value` over ranks."""
        return float(sum(self.gather(value)))

    def all(self, flag: bool) -> bool:
        """Whether `flag` holds on every rank."""
        return all(self.gather(flag))

    def sum_gradients(self, model) -> None:
        """Sum the ranks' gradients: every rank ends with the sum (a parameter without a
        gradient counts as zeros)."""
        import torch
        import torch.distributed as dist

        for parameter in model.parameters():
            if not parameter.requires_grad:
                continue
            if parameter.grad is None:
                parameter.grad = torch.zeros_like(parameter)
            dist.all_reduce(parameter.grad)

    def split_list(self, n: int, compute: Callable[[range], list[T]]) -> list[T]:
        """compute(rows) on this rank's block of n rows, the blocks' lists joined in order."""
        rows = self.block(n)
        return [item for part in self.gather(compute(rows) if rows else []) for item in part]

    def split_table(self, n: int, compute: Callable[[range], pa.Table]) -> pa.Table:
        """compute(rows) on this rank's block of n >= 1 rows, the blocks gathered in order
        (a rank left without rows when n < size computes nothing)."""
        rows = self.block(n)
        parts = self.gather(compute(rows) if rows else None)
        return pa.concat_tables([part for part in parts if part is not None])


ONE = Ranks()  # a process on its own


def current(device: str | None = None) -> Ranks:
    """This process's ranks: from accelerate's state when launched (its device unless
    `device` forces one; gloo on CPU-only machines), else a single rank."""
    if not launched():
        return Ranks(device=device)
    import torch
    from accelerate import PartialState

    state = PartialState(cpu=device == "cpu" or not torch.cuda.is_available())
    return Ranks(state.num_processes, state.process_index, device or str(state.device))


def process_group_open() -> bool:
    """Whether this process opened a torch.distributed process group (not imported: no)."""
    dist = sys.modules.get("torch.distributed")
    return dist is not None and dist.is_available() and dist.is_initialized()


def leave_process_group(code: int) -> NoReturn:
    """End a launched process: close its process group, flush the streams and exit without
    running C++ static destructors. At interpreter exit gloo's threads (which outlive
    destroy_process_group) could be destroyed while still joinable, aborting the rank after
    its outputs were written (SIGABRT, "terminate called without an active exception";
    1 launch in 4 or 5 on a 2-core CPU)."""
    import torch.distributed as dist

    dist.destroy_process_group()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def pick(items: Sequence[T], rows: range) -> list[T]:
    return [items[i] for i in rows]
