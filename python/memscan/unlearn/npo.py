"""NPO, negative preference optimization (Zhang et al. 2024): the forget set as
dispreferred responses with no preferred ones,

    L = (2 / beta) * mean_x log(1 + (pi_theta(x) / pi_ref(x))^beta)
      = (2 / beta) * mean_x softplus(beta * (NLL_ref(x) - NLL_theta(x))),

descended, pi_ref the input model (its NLLs computed once, before the first update, and
kept in the checkpoint, so no second model is held). As beta -> 0 it is GA on the
sequence NLL; its gradient weights each sequence by how far it already is below the
reference, so forgotten sequences stop pulling, which bounds the collapse GA runs into.
Stops as GA does (mean g < mu_u), on memscan's per-sequence scores. Micro-batches
average as the CE loss does (each micro-batch's mean, averaged).
"""

from __future__ import annotations

import numpy as np
import torch

from memscan.model.loading import LoadedModel
from memscan.model.training import sequence_nll
from memscan.unlearn.config import UnlearnConfig
from memscan.unlearn.phase import Phase, Targets, TrainingData, Update, below_mu_u

NAME = "npo"


class NegativePreference(Phase):
    label = "npo"
    ascent = False

    def __init__(self, beta: float, reference: torch.Tensor | None = None):
        self.beta = beta
        self.reference = reference  # NLL of every forget sequence under the input model

    def stop_reason(self, g: np.ndarray, el: np.ndarray | None, targets: Targets) -> str | None:
        return below_mu_u(g, el, targets)

    def gradient(self, loaded: LoadedModel, update: Update, data: TrainingData) -> float:
        if self.reference is None:  # the first update: the weights are still the input model's
            with torch.no_grad():
                self.reference = torch.cat([sequence_nll(loaded, [s]).cpu() for s in data.forget])
        loaded.model.zero_grad(set_to_none=True)
        total = 0.0
        for batch, scale in zip(update.own, update.scales):
            nll = sequence_nll(loaded, [data.forget[i] for i in batch])
            reference = self.reference[batch].to(nll.device)
            loss = (2 / self.beta) * torch.nn.functional.softplus(self.beta * (reference - nll)).mean()
            share = loss * scale
            share.backward()
            total += float(share.detach())
        return total

    def saved_state(self) -> dict[str, torch.Tensor] | None:
        return None if self.reference is None else {"reference_nll": self.reference}


def start(config: UnlearnConfig, model: torch.nn.Module, saved: dict | None = None) -> Phase:
    return NegativePreference(config.npo_beta, None if not saved else saved["reference_nll"])
