"""The loss every weight update steps on: mean token cross-entropy over chosen
sequences, ascended (GA, SGA) or descended (TA's fine-tuning, implanting), in
micro-batches whose gradients add up to one full-batch update."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from memscan.model.forward import pad_id, padded
from memscan.model.loading import LoadedModel


def accumulate_gradients(loaded: LoadedModel, sequences: Sequence[np.ndarray], ascent: bool, micro_batch: int) -> float:
    """Fill .grad with the gradient of (-)mean token CE over `sequences` and return the mean CE.

    The BOS context is never a target; every real token after the first is.
    """
    model, context = loaded.model, loaded.context
    n_targets = sum(len(s) - 1 for s in sequences)
    total_ce = 0.0
    model.zero_grad(set_to_none=True)
    for start in range(0, len(sequences), micro_batch):
        chunk = sequences[start : start + micro_batch]
        rows = [context + [int(t) for t in s] for s in chunk]
        ids, mask = padded(rows, pad_id(loaded), loaded.device)
        labels = ids.clone()
        labels[mask == 0] = -100
        labels[:, : len(context) + 1] = -100  # the context and x_1 are never predicted
        logits = model(input_ids=ids, attention_mask=mask).logits[:, :-1].float()
        ce_sum = torch.nn.functional.cross_entropy(
            logits.transpose(1, 2), labels[:, 1:], ignore_index=-100, reduction="sum"
        )
        objective = (-ce_sum if ascent else ce_sum) / n_targets
        objective.backward()
        total_ce += float(ce_sum.detach())
    return total_ce / n_targets


def gradients_finite(model: torch.nn.Module) -> bool:
    return all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def parameters_finite(model: torch.nn.Module) -> bool:
    return all(torch.isfinite(p).all() for p in model.parameters())
