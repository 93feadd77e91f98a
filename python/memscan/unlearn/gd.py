"""Gradient difference (Liu et al. 2022; the baseline of TOFU and open-unlearning):
ascend on the forget set and descend on a retain set in the same update,

    L = -CE(forget micro-batch) + retain_weight * CE(retain micro-batch),

each forget micro-batch paired with a retain micro-batch of the same size, taken in
turn from the retain set (cycling, so every epoch steps on the next ones;
phase.Update.retain_batches). Stops as GA
does (mean g < mu_u). Needs `--retain`: text the model must keep (e.g. of the same
domain as the forget set, never overlapping it).
"""

from __future__ import annotations

import numpy as np
import torch

from memscan.model.loading import LoadedModel
from memscan.model.training import accumulate_gradients
from memscan.unlearn.config import UnlearnConfig
from memscan.unlearn.phase import Phase, Targets, TrainingData, Update, below_mu_u

NAME = "gd"


class GradientDifference(Phase):
    label = "gradient-difference"

    def __init__(self, retain_weight: float):
        self.retain_weight = retain_weight

    def stop_reason(self, g: np.ndarray, el: np.ndarray | None, targets: Targets) -> str | None:
        return below_mu_u(g, el, targets)

    def gradient(self, loaded: LoadedModel, update: Update, data: TrainingData) -> float:
        assert data.retain, "gradient difference needs a retain set (checked by UnlearnConfig's users)"
        forget = [[data.forget[i] for i in batch] for batch in update.own]
        retain = update.retain_batches(data.retain)
        ascended = accumulate_gradients(loaded, forget, ascent=True, scales=update.scales)
        kept = {name: p.grad.clone() for name, p in loaded.model.named_parameters() if p.grad is not None}
        descended = accumulate_gradients(loaded, retain, ascent=False, scales=update.scales)
        for name, p in loaded.model.named_parameters():
            if p.grad is not None:
                p.grad.mul_(self.retain_weight)
            if name in kept:
                p.grad = kept[name] if p.grad is None else p.grad.add_(kept[name])
        return -ascended + self.retain_weight * descended


def start(config: UnlearnConfig, model: torch.nn.Module, saved: dict | None = None) -> Phase:
    return GradientDifference(config.retain_weight)
