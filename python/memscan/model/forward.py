"""Teacher-forced passes: everything one forward pass over a batch of sequences tells.

Per sequence x_1..x_T (with the model's BOS context in front where it has one, never
scored), for the positions t = 2..T: whether argmax p(. | x_<t) is x_t (memorization
accuracy), log p(x_t | x_<t) (loss, zlib, Min-K%), and Min-K%++'s normalised score
(log p(x_t) - mu_t) / sigma_t with mu_t, sigma_t the mean and standard deviation of
log p(z | x_<t) under z ~ p(. | x_<t). Padding never counts.

It also gives the probability that differentially private decoding (DPD, the
papers' decoding-time baseline) emits x_t: the authors' `gpt_neo_dp.py` mixes the
logits with their mean, lambda * l + (1 - lambda) * mean(l) with lambda = 0.2, which
under softmax is temperature 1 / lambda, and samples with transformers' default
top-k of 50. Its mean over positions is the expected MA of DPD sampling (the authors
draw one sample per prefix; the expectation is the same score without the draw's noise).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

import numpy as np
import torch

from memscan.model.loading import LoadedModel
from memscan.model.ranks import ONE, Ranks
from memscan.scan.ragged import TokenSequence

DPD_LAMBDA = 0.2  # the authors' mixing weight
DPD_TOP_K = 50  # transformers' default top-k, with which the authors sampled


@dataclass
class TokenStats:
    """One sequence's per-position results for targets x_2..x_T (T - 1 entries)."""

    hits: np.ndarray  # bool
    logprobs: np.ndarray  # float64
    minkpp: np.ndarray  # float64
    dpd: np.ndarray  # float64: probability that DPD sampling emits the target

    @property
    def memorization_accuracy(self) -> float:
        return hit_rate(self.hits)

    @property
    def dpd_memorization_accuracy(self) -> float:
        """Expected MA when every next token is sampled by DPD."""
        return float(self.dpd.mean()) if self.dpd.size else 0.0

    @property
    def loss(self) -> float:
        """Mean negative log-likelihood per scored token."""
        return -mean_logprob(self.logprobs)

    def extraction_strength(self) -> float:
        """1 - k*/T, k* the shortest prefix from which teacher-forced argmax gives every
        remaining token: one past the last position the model gets wrong (k* = 1 when
        it gets all of t = 2..T right, since x_1 is never predicted)."""
        length = self.hits.size + 1
        misses = np.flatnonzero(~self.hits)
        k_star = int(misses[-1]) + 2 if misses.size else 1
        return 1.0 - k_star / length


def batches_by_length(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Indices grouped into batches of similar length, so padding stays small."""
    order = sorted(range(len(lengths)), key=lambda i: (lengths[i], i))
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def padded(rows: list[list[int]], pad: int, device, left: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """(ids, attention mask) of rows padded to one width: on the right for scoring, on
    the left for generation (so every prompt ends where the new tokens begin)."""
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for j, row in enumerate(rows):
        where = slice(width - len(row), width) if left else slice(0, len(row))
        ids[j, where] = torch.as_tensor(row, dtype=torch.long)
        mask[j, where] = 1
    return ids.to(device), mask.to(device)


def pad_id(loaded: LoadedModel) -> int:
    tok = loaded.tokenizer
    return next(t for t in (tok.pad_token_id, tok.eos_token_id, 0) if t is not None)


def teacher_forced(
    loaded: LoadedModel, sequences: Sequence[TokenSequence], batch_size: int = 8, progress=None, ranks: Ranks = ONE
) -> list[TokenStats]:
    """TokenStats of every sequence, one forward pass per batch; each of `ranks` takes
    its block of the sequences (a sequence's stats do not depend on its batch)."""
    if ranks.size == 1:
        return _teacher_forced(loaded, sequences, batch_size, progress)
    shown = progress if ranks.is_main else None
    return ranks.split_list(
        len(sequences), lambda rows: _teacher_forced(loaded, [sequences[i] for i in rows], batch_size, shown)
    )


@torch.no_grad()
def _teacher_forced(
    loaded: LoadedModel, sequences: Sequence[TokenSequence], batch_size: int, progress
) -> list[TokenStats]:
    context = loaded.context
    stats: list[TokenStats | None] = [None] * len(sequences)
    for batch in batches_by_length([len(s) for s in sequences], batch_size):
        rows = [context + [int(t) for t in sequences[i]] for i in batch]
        ids, mask = padded(rows, pad_id(loaded), loaded.device)
        with loaded.autocast():
            logits = loaded.model(input_ids=ids, attention_mask=mask).logits
        for j, i in enumerate(batch):
            start, length = len(context), len(sequences[i])
            row_logits = logits[j, start : start + length - 1].float()
            targets = ids[j, start + 1 : start + length]
            stats[i] = _position_stats(row_logits, targets)
        if progress:
            progress(len(batch))
    return cast(list[TokenStats], stats)  # every index was filled


def _position_stats(logits: torch.Tensor, targets: torch.Tensor) -> TokenStats:
    logp = torch.log_softmax(logits, dim=-1)
    target_logp = logp.gather(-1, targets[:, None])[:, 0]
    probs = logp.exp()
    mu = (probs * logp).sum(-1)
    sigma = ((probs * logp.square()).sum(-1) - mu.square()).clamp_min(1e-12).sqrt()
    return TokenStats(
        hits=(logits.argmax(-1) == targets).cpu().numpy(),
        logprobs=target_logp.double().cpu().numpy(),
        minkpp=((target_logp - mu) / sigma).double().cpu().numpy(),
        dpd=dpd_probabilities(logits, targets).double().cpu().numpy(),
    )


def dpd_probabilities(
    logits: torch.Tensor, targets: torch.Tensor, lam: float = DPD_LAMBDA, top_k: int = DPD_TOP_K
) -> torch.Tensor:
    """Per position, the probability that DPD samples the target: softmax of lam * logits
    over the top_k largest (ties at the k-th value kept, as transformers' top-k keeps them)."""
    scaled = logits * lam  # the (1 - lam) * mean term shifts every logit alike: softmax ignores it
    return torch.softmax(top_k_kept(scaled, top_k), dim=-1).gather(-1, targets[:, None])[:, 0]


def top_k_kept(logits: torch.Tensor, top_k: int) -> torch.Tensor:
    """The logits with all but the top_k largest per row set to -inf (ties at the k-th
    value kept, as transformers' top-k keeps them)."""
    kth = logits.topk(min(top_k, logits.shape[-1]), dim=-1).values[..., -1:]
    return logits.masked_fill(logits < kth, float("-inf"))


@torch.no_grad()
def target_scores(
    loaded: LoadedModel,
    sequences: Sequence[TokenSequence],
    last: Sequence[int] | None = None,
    batch_size: int = 8,
    progress=None,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per sequence, the log-probability of each of its last `last[i]` tokens (every
    target x_2..x_T when `last` is None) and whether greedy decoding picks it: the
    `logprobs` and `hits` of `teacher_forced`, without its other statistics and with
    logits computed only where a batch needs them (a task item's short continuation
    after a long context needs a few of its hundreds of positions)."""
    context = loaded.context
    wanted = [len(s) - 1 if last is None else min(last[i], len(s) - 1) for i, s in enumerate(sequences)]
    scores: list[tuple[np.ndarray, np.ndarray] | None] = [None] * len(sequences)
    for batch in batches_by_length([len(s) for s in sequences], batch_size):
        rows = [context + [int(t) for t in sequences[i]] for i in batch]
        ids, mask = padded(rows, pad_id(loaded), loaded.device)
        ends = [len(row) - 1 for row in rows]  # the position predicting a row's last token
        first = min(end - wanted[i] for end, i in zip(ends, batch))
        keep = torch.arange(first, max(ends), device=ids.device)
        with loaded.autocast():
            logits = loaded.model(input_ids=ids, attention_mask=mask, logits_to_keep=keep).logits
        for j, i in enumerate(batch):
            start = ends[j] - wanted[i]
            scores[i] = targets_of(logits[j, start - first : ends[j] - first], ids[j, start + 1 : ends[j] + 1])
        if progress:
            progress(len(batch))
    return cast(list[tuple[np.ndarray, np.ndarray]], scores)  # every index was filled


def targets_of(logits: torch.Tensor, targets: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Per position: log p(target) from the logits (in fp32), and whether argmax is the target."""
    logits = logits.float()
    logp = torch.log_softmax(logits, dim=-1).gather(-1, targets[:, None])[:, 0]
    return logp.double().cpu().numpy(), (logits.argmax(-1) == targets).cpu().numpy()


def every_target(
    loaded: LoadedModel, sequences: Sequence[TokenSequence], batch_size: int = 8, progress=None, ranks: Ranks = ONE
) -> list[tuple[np.ndarray, np.ndarray]]:
    """`target_scores` of every target x_2..x_T, each of `ranks` taking its block: the
    `logprobs` and `hits` of `teacher_forced` (bit for bit: same batches, same logits)
    without the full-vocabulary passes of its Min-K%++ and DPD statistics."""
    if ranks.size == 1:
        return target_scores(loaded, sequences, None, batch_size, progress)
    shown = progress if ranks.is_main else None
    return ranks.split_list(
        len(sequences), lambda rows: target_scores(loaded, [sequences[i] for i in rows], None, batch_size, shown)
    )


def hit_rate(hits: np.ndarray) -> float:
    """Share of scored positions where greedy decoding picks the target: MA."""
    return float(hits.mean()) if hits.size else 0.0


def mean_logprob(logprobs: np.ndarray) -> float:
    """Mean log-likelihood per scored token (minus the loss)."""
    return float(logprobs.mean()) if logprobs.size else 0.0


def token_nll(
    loaded: LoadedModel, sequences: Sequence[TokenSequence], batch_size: int = 8, progress=None, ranks: Ranks = ONE
) -> tuple[np.ndarray, np.ndarray]:
    """Per sequence: the summed negative log-likelihood of its scored tokens, and their number."""
    scored = every_target(loaded, sequences, batch_size, progress, ranks)
    return np.array([-logp.sum() for logp, _ in scored]), np.array([logp.size for logp, _ in scored])


def perplexity_of(nll: np.ndarray, counts: np.ndarray) -> float:
    """exp of the mean negative log-likelihood per scored token, from `token_nll`'s sums."""
    return float(np.exp(nll.sum() / max(counts.sum(), 1)))


def perplexity(
    loaded: LoadedModel, sequences: Sequence[TokenSequence], batch_size: int = 8, ranks: Ranks = ONE
) -> float:
    """Perplexity of held-out text: every scored token of every sequence counts once."""
    return perplexity_of(*token_nll(loaded, sequences, batch_size, ranks=ranks))
