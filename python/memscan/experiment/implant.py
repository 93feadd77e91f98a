"""Implanting passages into a model by fine-tuning at a spread of strengths.

Pretraining data is memorized unevenly: a passage seen many times is recited, one
seen once is not. Fine-tuning with per-passage repeat counts reproduces that
spread: in epoch e, every passage whose count exceeds e is in the batch, so a
passage with count r takes part in r full-batch updates.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from memscan.experiment.evaluate import unseen_interval
from memscan.experiment.sets import PassageSets, PassageSizes, kjv_passages
from memscan.model.interval import Interval
from memscan.model.loading import LoadedModel
from memscan.model.memorization import MemorizationOptions, memorization_table
from memscan.model.training import accumulate_gradients, chunks, train_in_fp32

DEFAULT_REPEATS = (1, 2, 4, 8)


def spread_repeats(count: int, levels: Sequence[int] = DEFAULT_REPEATS) -> list[int]:
    """Repeat counts cycling through `levels`, so every strength has as many passages."""
    return [levels[i % len(levels)] for i in range(count)]


def implant(
    loaded: LoadedModel,
    sequences: Sequence[np.ndarray],
    repeats: Sequence[int],
    lr: float = 3e-4,
    micro_batch: int = 8,
    progress=None,
) -> list[float]:
    """Fine-tune in place (fp32 master weights); returns the mean token CE of each epoch's batch before its update."""
    train_in_fp32(loaded)
    optimizer = torch.optim.AdamW(loaded.model.parameters(), lr=lr, weight_decay=0.0)
    losses = []
    for epoch in range(max(repeats)):
        batch = [s for s, r in zip(sequences, repeats) if r > epoch]
        losses.append(accumulate_gradients(loaded, chunks(batch, micro_batch), ascent=False, per_micro_batch=False))
        optimizer.step()
        loaded.model.zero_grad(set_to_none=True)
        if progress:
            progress(1)
    return losses


@dataclass
class ImplantedPassages:
    """KJV passages of which the forget set was implanted, and the interval learned after."""

    sets: PassageSets
    repeats: list[int]  # per forget passage (0: not implanted, memorized in pretraining if at all)
    pretrained_ma: list[float]  # per forget passage, before implanting
    interval: Interval  # from the unseen passages, on the implanted model


def implant_passages(
    loaded: LoadedModel,
    sizes: PassageSizes,
    seed: int,
    lr: float,
    progress=None,
    fixed_interval: tuple[float, ...] | None = None,
) -> ImplantedPassages:
    """Draw the sets, implant the forget set in place (repeats 1/2/4/8), learn the interval
    (or fix it, with mu_u still the unseen mean)."""
    sets = kjv_passages(loaded, sizes, seed)
    repeats = spread_repeats(sizes.forget)
    pretrained_ma = memorization_table(loaded, *sets.forget, MemorizationOptions(n=0, k=0)).column("ma").to_pylist()
    torch.manual_seed(seed)
    implant(loaded, sets.forget[1], repeats, lr, progress=progress)
    return ImplantedPassages(sets, repeats, pretrained_ma, unseen_interval(loaded, sets, fixed_interval))


def pretrained_passages(loaded: LoadedModel, sets: PassageSets, fixed_interval: tuple[float, ...] | None = None):
    """The sets as they are, nothing implanted (the papers' setting: what the model
    memorized in pretraining), with the interval learned on the same model."""
    pretrained_ma = memorization_table(loaded, *sets.forget, MemorizationOptions(n=0, k=0)).column("ma").to_pylist()
    repeats = [0] * len(sets.forget[0])
    return ImplantedPassages(sets, repeats, pretrained_ma, unseen_interval(loaded, sets, fixed_interval))
