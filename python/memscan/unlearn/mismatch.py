"""GA+Mismatch (Yao et al. 2023), the papers' baseline, as the authors ran it on text
sequences (selective_unlearning's `gpt_neo_mismatch.py`): per update,

    L = w_bad * L_ga + w_random * L_random + w_normal * L_kl,

- L_ga: gradient ascent on each forget sequence's continuation, x_{p+1}..x_T (the
  mean token CE per sequence, negated), p = 50 prompt tokens;
- L_random: descent on K = 5 *mismatched* completions of each forget sequence: its first
  p tokens followed by the start of a random retain sequence (the authors' random normal
  answers), up to the forget sequence's length, scored on the completion only; computed
  and back-propagated one micro-batch of completions at a time, so that no pass holds
  more sequences' logits than a micro-batch (K micro-batches at once held 4 GB of logits
  per pass for Gemma-3's 262 k-token vocabulary);
- L_kl: KL(pi_ref || pi_theta) per token on retain text (the authors' "normal" data),
  pi_ref the input model, held as a frozen copy (on the model's device while training,
  so this method needs memory for two models; the checkpoint keeps it too); computed
  and back-propagated one retain sequence at a time, after the ascent's backward: a
  pass holds two models' logits and their log-softmaxes, and the terms in one graph
  peaked at 18.6 GiB for Gemma-3-270M with micro-batches of 4.

Weights 0.5, 1, 1 as the authors'. Differences from their run, each forced by the
shared loop: one full-batch update per epoch in micro-batches (they step per sequence,
batch 1, through an AdaLoRA adapter of rank 512 at lr 2e-4), retain micro-batches taken
in turn as gradient difference takes them, and the stopping rule every method here
uses (mean g < mu_u; theirs: MA < 0.32, GPT-Neo's unseen mean). Random completions are
joined as token ids, not re-tokenized text.
"""

from __future__ import annotations

import copy

import numpy as np
import torch

from memscan.model.loading import LoadedModel
from memscan.model.training import sequence_mean_ce
from memscan.unlearn.config import UnlearnConfig
from memscan.unlearn.phase import Phase, Targets, TrainingData, Update, below_mu_u

NAME = "ga_mismatch"
PROMPT_TOKENS = 50  # the authors' start_locs
RANDOM_COMPLETIONS = 5  # the authors' K
WEIGHTS = (0.5, 1.0, 1.0)  # bad, random, normal: the authors' defaults


class Mismatch(Phase):
    label = "ga-mismatch"

    def __init__(self, seed: int, reference_state: dict | None = None):
        self.seed = seed
        self.reference_state = reference_state  # the input model's weights
        self._reference: torch.nn.Module | None = None

    def stop_reason(self, g: np.ndarray, el: np.ndarray | None, targets: Targets) -> str | None:
        return below_mu_u(g, el, targets)

    def gradient(self, loaded: LoadedModel, update: Update, data: TrainingData) -> float:
        assert data.retain, "GA+Mismatch needs a retain set (checked by UnlearnConfig's users)"
        reference = self.reference_model(loaded)
        w_bad, w_random, w_normal = WEIGHTS
        loaded.model.zero_grad(set_to_none=True)
        total = 0.0
        for j, scale, normal in zip(update.mine, update.scales, update.retain_batches(data.retain)):
            forget = [data.forget[i] for i in update.micro_batches[j]]
            starts = [prompt_tokens(s) for s in forget]
            share = w_bad * -sequence_mean_ce(loaded, forget, starts).mean() * scale
            share.backward()
            total += float(share.detach())
            tokens = sum(len(loaded.context) + len(s) for s in normal)
            for sequence in normal:
                share = w_normal * sequence_kl(loaded, reference, sequence) / tokens * scale
                share.backward()
                total += float(share.detach())
            completions, completion_starts = mismatched(forget, data.retain, self.completions_rng(update.epoch, j))
            for first in range(0, len(completions), len(forget)):  # K times the micro-batch: a micro-batch at a time
                part = slice(first, first + len(forget))
                ce = sequence_mean_ce(loaded, completions[part], completion_starts[part])
                share = w_random * ce.sum() / len(completions) * scale
                share.backward()
                total += float(share.detach())
        return total

    def completions_rng(self, epoch: int, micro_batch: int) -> np.random.Generator:
        """The random completions of one micro-batch of one epoch's update, drawn the same
        whichever process computes it."""
        return np.random.default_rng([self.seed, epoch, micro_batch])

    def reference_model(self, loaded: LoadedModel) -> torch.nn.Module:
        """The frozen copy of the input model that the KL term compares against, made on first use."""
        if self._reference is None:
            self._reference = copy.deepcopy(loaded.model).eval().requires_grad_(False)
            if self.reference_state is not None:  # a resumed run: the input model's weights, not the current ones
                self._reference.load_state_dict(self.reference_state)
            else:
                self.reference_state = {k: v.detach().cpu().clone() for k, v in self._reference.state_dict().items()}
        return self._reference

    def saved_state(self) -> dict[str, torch.Tensor] | None:
        return self.reference_state


def prompt_tokens(sequence: np.ndarray) -> int:
    """The authors' 50-token prompt, shortened so that at least one token is a target."""
    return max(1, min(PROMPT_TOKENS, len(sequence) - 1))


def mismatched(forget: list[np.ndarray], retain: list[np.ndarray], rng: np.random.Generator):
    """K completions per forget sequence: its prompt, then the start of a random retain sequence."""
    completions, starts = [], []
    for sequence in forget:
        p = prompt_tokens(sequence)
        for r in rng.choice(len(retain), size=RANDOM_COMPLETIONS, replace=len(retain) < RANDOM_COMPLETIONS):
            tail = retain[int(r)][: max(1, len(sequence) - p)]
            completions.append(np.concatenate([sequence[:p], tail]).astype(np.uint32))
            starts.append(p)
    return completions, starts


def sequence_kl(loaded: LoadedModel, reference: torch.nn.Module, sequence: np.ndarray) -> torch.Tensor:
    """KL(reference || model) of the next-token distributions, summed over the sequence's
    tokens (the BOS context's too); over a batch's total tokens it gives the batch's mean."""
    ids = torch.as_tensor([loaded.context + [int(t) for t in sequence]], device=loaded.device)
    with loaded.autocast():
        logits = loaded.model(input_ids=ids).logits.float()
        with torch.no_grad():
            reference_logits = reference(input_ids=ids).logits.float()
    log_q = torch.log_softmax(logits, -1)
    log_p = torch.log_softmax(reference_logits, -1)
    return torch.nn.functional.kl_div(log_q, log_p, log_target=True, reduction="sum")


def start(config: UnlearnConfig, model: torch.nn.Module, saved: dict | None = None) -> Phase:
    return Mismatch(config.seed, saved or None)
