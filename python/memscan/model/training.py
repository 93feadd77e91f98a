"""The loss every weight update steps on: token cross-entropy over chosen sequences,
ascended (GA, SGA) or descended (TA's fine-tuning, implanting), in micro-batches whose
gradients add up to one full-batch update.

Two normalisations: the authors' (the mean token CE of each micro-batch, averaged over
the micro-batches, as data-parallel training with one micro-batch per device computes
it), and the mean token CE over every target token of the batch. They agree when every
micro-batch holds as many target tokens as the others.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from memscan.model.forward import pad_id, padded
from memscan.model.loading import LoadedModel
from memscan.model.sharding import local


def chunks(sequences: Sequence[np.ndarray], size: int) -> list[list[np.ndarray]]:
    """Consecutive micro-batches of at most `size` sequences."""
    return [list(sequences[start : start + size]) for start in range(0, len(sequences), size)]


def accumulate_gradients(
    loaded: LoadedModel,
    micro_batches: Sequence[Sequence[np.ndarray]],
    ascent: bool,
    per_micro_batch: bool = True,
    scales: Sequence[float] | None = None,
) -> float:
    """Fill .grad with the gradient of the loss (negated for ascent) and return the loss.

    per_micro_batch: the loss is the mean over micro-batches of each one's mean token CE
    (each weighted by `scales[j]` instead of 1 / len(micro_batches) when given: an
    update split across processes, unlearn/phase.Update); else the mean token CE over
    all of them. The BOS context is never a target; every real token after the first is.
    """
    weights = [1 / len(micro_batches)] * len(micro_batches) if scales is None else list(scales)
    kept = [(batch, weight) for batch, weight in zip(micro_batches, weights) if len(batch)]
    n_targets = sum(len(s) - 1 for batch, _ in kept for s in batch)
    loss = 0.0
    loaded.model.zero_grad(set_to_none=True)
    for batch, weight in kept:
        ce_sum = _target_ce(loaded, batch, None)[0].sum()
        if per_micro_batch:
            share = ce_sum / sum(len(s) - 1 for s in batch) * weight
        else:
            share = ce_sum / n_targets
        (-share if ascent else share).backward()
        loss += float(share.detach())
    return loss


def sequence_nll(loaded: LoadedModel, batch: Sequence[np.ndarray], start: Sequence[int] | None = None) -> torch.Tensor:
    """Each sequence's negative log-likelihood, summed over its target tokens x_2..x_T (as
    in accumulate_gradients), or over x_{start+1}..x_T when `start[i]` tokens of sequence
    i are its prompt; differentiable: [len(batch)]."""
    return _target_ce(loaded, batch, start)[0].sum(dim=1)


def sequence_mean_ce(loaded: LoadedModel, batch: Sequence[np.ndarray], start: Sequence[int]) -> torch.Tensor:
    """Each sequence's mean token CE over x_{start+1}..x_T (its continuation), differentiable."""
    per_token, targets = _target_ce(loaded, batch, start)
    return per_token.sum(dim=1) / targets.sum(dim=1).clamp_min(1)


def _target_ce(
    loaded: LoadedModel, batch: Sequence[np.ndarray], start: Sequence[int] | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-token CE of the targets (0 elsewhere) and which positions are targets."""
    model, context = loaded.model, loaded.context
    rows = [context + [int(t) for t in s] for s in batch]
    ids, mask = padded(rows, pad_id(loaded), loaded.device)
    labels = ids.clone()
    labels[mask == 0] = -100
    labels[:, : len(context) + 1] = -100  # the context and x_1 are never predicted
    for i, first in enumerate(start or ()):
        labels[i, : len(context) + first] = -100
    with loaded.autocast():
        logits = model(input_ids=ids, attention_mask=mask).logits[:, :-1].float()
    targets = labels[:, 1:]
    per_token = torch.nn.functional.cross_entropy(logits.transpose(1, 2), targets, ignore_index=-100, reduction="none")
    return per_token, targets != -100


def train_in_fp32(loaded: LoadedModel) -> None:
    """Make the weights fp32 masters before any update: Adam on bf16 weights loses a 5e-5
    step to rounding (a weight near 0.02 has a bf16 spacing near 1e-4). On CUDA the
    forward and backward still run in bf16 (`LoadedModel.autocast`)."""
    if any(p.dtype != torch.float32 for p in loaded.model.parameters()):
        loaded.model.float()


def gradients_finite(model: torch.nn.Module) -> bool:
    """Whether this rank's gradients (its shards, of a sharded model) are finite."""
    return all(torch.isfinite(local(p.grad)).all() for p in model.parameters() if p.grad is not None)


def parameters_finite(model: torch.nn.Module) -> bool:
    return all(torch.isfinite(local(p)).all() for p in model.parameters())
