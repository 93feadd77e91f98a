"""What one unlearning method decides, as a phase of the shared epoch loop (loop.py):
which forget sequences the next update steps on and how they form micro-batches, in
which direction, on which weights g is scored, and when to stop. A method is one
phase (GA, SGA) or a phase that hands over to another (TA: ascent, then task
arithmetic; TAU: selective ascent, then task arithmetic)."""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch

from memscan.model.interval import Interval
from memscan.model.loading import LoadedModel
from memscan.model.ranks import Ranks
from memscan.model.training import accumulate_gradients


@dataclass(frozen=True)
class TrainingData:
    """What an update may step on: the forget set, and the retain set of the methods that use one."""

    forget: list[np.ndarray]
    retain: list[np.ndarray] | None = None


@dataclass(frozen=True)
class Update:
    """One update's micro-batches (forget indices), the ones this process computes, and
    the weight of each in the loss. On one process: all of them, each 1/M of the loss
    (M micro-batches). Launched (model/ranks.py), each rank takes its block and the
    ranks' gradients are summed; sharded (model/sharding.py), every rank must run as
    many passes, so a rank short of work repeats one at weight 0, and the weights are
    N/M because the reduce-scatter averages the N ranks' gradients."""

    epoch: int
    micro_batches: list[list[int]]
    mine: list[int]  # indices into micro_batches, in order
    scales: list[float]  # the loss weight of each of mine

    @classmethod
    def whole(cls, epoch: int, micro_batches: list[list[int]]) -> Update:
        return cls(epoch, micro_batches, list(range(len(micro_batches))), [1 / len(micro_batches)] * len(micro_batches))

    @classmethod
    def split(cls, epoch: int, micro_batches: list[list[int]], ranks: Ranks, lockstep: bool) -> Update:
        """This rank's block of the micro-batches; `lockstep`: padded to the largest block."""
        count = len(micro_batches)
        mine = list(ranks.block(count))
        if not lockstep:
            return cls(epoch, micro_batches, mine, [1 / count] * len(mine))
        padding = -(-count // ranks.size) - len(mine)
        scales = [ranks.size / count] * len(mine) + [0.0] * padding
        return cls(epoch, micro_batches, mine + [mine[0] if mine else 0] * padding, scales)

    @property
    def own(self) -> list[list[int]]:
        return [self.micro_batches[j] for j in self.mine]

    def retain_batches(self, retain: list[np.ndarray]) -> list[list[np.ndarray]]:
        """The retain micro-batch paired with each of this process's micro-batches: the
        update's micro-batches take the retain set in turn, as many as each holds, from
        where the previous epoch's update (of the same sizes) stopped, cycling; so the
        pairing does not depend on how the micro-batches are split across processes."""
        sizes = [len(batch) for batch in self.micro_batches]
        start = self.epoch * sum(sizes)
        return [[retain[(start + sum(sizes[:j]) + k) % len(retain)] for k in range(sizes[j])] for j in self.mine]


@dataclass(frozen=True)
class Targets:
    """What "forgotten" means for a run: the interval learned from unseen text (mu_u is
    its mean), and the unseen set's mean EL_n when EL is tracked."""

    interval: Interval
    unseen_el_mean: float | None = None


class Phase:
    label: ClassVar[str]  # recorded with every epoch (epochs.parquet's `phase`)
    ascent: ClassVar[bool] = True  # gradient ascent on the selection, else descent
    keeps_weights: ClassVar[bool] = False  # saved_state() holds per-parameter weights (weights.cpu_copy)

    def scored_weights(self, model: torch.nn.Module) -> AbstractContextManager:
        """The weights g is scored on while the block runs: the model as it is."""
        return nullcontext(model)

    def micro_batches(self, g: np.ndarray, targets: Targets, size: int) -> list[list[int]]:
        """The forget sequences the next update steps on, as micro-batches: all of them,
        in consecutive micro-batches of `size`."""
        return [list(range(start, min(start + size, len(g)))) for start in range(0, len(g), size)]

    def stop_reason(self, g: np.ndarray, el: np.ndarray | None, targets: Targets) -> str | None:
        raise NotImplementedError

    def gradient(self, loaded: LoadedModel, update: Update, data: TrainingData) -> float:
        """Fill .grad with the gradient of this process's micro-batches and return their loss,
        each micro-batch's term weighted by its `update.scales`: by default the token CE
        of the chosen forget sequences, ascended or descended (model/training.py)."""
        batches = [[data.forget[i] for i in batch] for batch in update.own]
        return accumulate_gradients(loaded, batches, self.ascent, scales=update.scales)

    def handover(self, g: np.ndarray, model: torch.nn.Module) -> tuple[Phase, str] | None:
        """The phase that takes over before this epoch's stopping rule, and why; None to go on.
        The optimizer's state carries over, as in the authors' code."""
        return None

    def saved_state(self) -> dict[str, torch.Tensor] | None:
        """What a checkpoint must keep besides the weights and the optimizer to resume this phase."""
        return None

    def finish(self, model: torch.nn.Module) -> None:
        """Turn the trained weights into the output model (nothing to do but for task arithmetic)."""


def below_mu_u(g: np.ndarray, el: np.ndarray | None, targets: Targets) -> str | None:
    """Jang et al.'s stopping rule: mean g < mu_u (and mean EL_n below its unseen mean when tracked)."""
    mean, mu_u = float(g.mean()), targets.interval.mu_u
    el_done = el is None or targets.unseen_el_mean is None or float(el.mean()) < targets.unseen_el_mean
    if mean < mu_u and el_done:
        return f"mean g {mean:.4f} < mu_u {mu_u:.4f}" + (" and mean EL below its unseen mean" if el is not None else "")
    return None
