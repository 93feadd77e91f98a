"""Greedy generation in batches, and the continuations of many prefixes of a sequence.

Greedy decoding is deterministic: if the continuation of x_<t starts with the true
token x_t, the rest of it *is* the continuation of x_<t+1. So one generation from
prefix t serves every later prefix up to the first token it gets wrong, and which
prefixes need a generation of their own follows from the teacher-forced hits (a
prefix needs one exactly when the model misses the token just before it). On a
memorized sequence most prefixes come for free.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from memscan.forward import pad_id
from memscan.models import LoadedModel


@torch.no_grad()
def greedy(loaded: LoadedModel, prompts: Sequence[Sequence[int]], n_new: Sequence[int], batch_size: int = 32, progress=None) -> list[np.ndarray]:
    """Exactly n_new[i] greedily generated tokens after prompts[i] (no stop at end of text).

    Prompts are left-padded and generated in batches with a KV cache; an empty prompt
    starts from the model's start token. The model's BOS context goes in front of all.
    """
    from transformers import GenerationConfig

    context, pad = loaded.context, pad_id(loaded)
    rows = [context + ([int(t) for t in p] if len(p) else ([] if context else [loaded.start_token])) for p in prompts]
    out: list[np.ndarray | None] = [None] * len(prompts)
    # longest generations first, and prompts of similar length together
    order = sorted(range(len(rows)), key=lambda i: (-n_new[i], len(rows[i]), i))
    for start in range(0, len(order), batch_size):
        batch = order[start : start + batch_size]
        width = max(len(rows[i]) for i in batch)
        ids = torch.full((len(batch), width), pad, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for j, i in enumerate(batch):
            ids[j, width - len(rows[i]) :] = torch.as_tensor(rows[i])
            mask[j, width - len(rows[i]) :] = 1
        steps = max(n_new[i] for i in batch)
        config = GenerationConfig(
            max_new_tokens=steps, min_new_tokens=0, do_sample=False, eos_token_id=None, pad_token_id=pad,
        )
        generated = loaded.model.generate(
            input_ids=ids.to(loaded.device), attention_mask=mask.to(loaded.device), generation_config=config
        )[:, width:].cpu().numpy()
        for j, i in enumerate(batch):
            out[i] = generated[j, : n_new[i]].astype(np.uint32)
        if progress:
            progress(len(batch))
    return out


@dataclass
class PrefixContinuations:
    """Greedy continuations to full length of prefixes of sequences (flat, aligned lists)."""

    owner: np.ndarray  # which sequence
    prefix: np.ndarray  # how many of its tokens the prompt holds
    continuations: list[np.ndarray]  # exactly T - prefix tokens each
    n_generated: int  # generations actually run (the rest were reused)


def continuations_of_prefixes(
    loaded: LoadedModel,
    sequences: Sequence[np.ndarray],
    prefixes: Sequence[Sequence[int]],
    hits: Sequence[np.ndarray],
    batch_size: int = 32,
    progress=None,
) -> PrefixContinuations:
    """For each sequence i and each p in prefixes[i], the greedy continuation of its first
    p tokens up to its full length, generating only where no earlier continuation serves.

    hits[i][t - 1] says whether teacher-forced argmax predicts token t (0-based) of
    sequence i. A generation is reused only where its own tokens agree with the
    sequence, so a hit that batched numerics flip costs one more generation, never a
    wrong continuation.
    """
    wanted = [sorted(set(int(p) for p in ps)) for ps in prefixes]
    found: list[dict[int, np.ndarray]] = [{} for _ in sequences]
    starts = [_needing_generation(ps, h) for ps, h in zip(wanted, hits)]
    n_generated = 0
    while any(starts):
        jobs = [(i, p) for i, ps in enumerate(starts) for p in sorted(ps)]
        prompts = [sequences[i][:p] for i, p in jobs]
        lengths = [len(sequences[i]) - p for i, p in jobs]
        generated = greedy(loaded, prompts, lengths, batch_size, progress)
        n_generated += len(jobs)
        for (i, p), tokens in zip(jobs, generated):
            _spread(found[i], sequences[i], wanted[i], p, tokens)
        starts = [[p for p in ps if p not in found[i]][:1] for i, ps in enumerate(wanted)]
    owner = [i for i, ps in enumerate(wanted) for _ in ps]
    prefix = [p for ps in wanted for p in ps]
    continuations = [found[i][p] for i, p in zip(owner, prefix)]
    return PrefixContinuations(np.asarray(owner, np.uint32), np.asarray(prefix, np.uint32), continuations, n_generated)


def _needing_generation(wanted: list[int], hits: np.ndarray) -> list[int]:
    """The wanted prefixes that the continuation of the previous wanted one does not
    reach by the teacher-forced hits (the token before prefix 1 is never predicted)."""
    starts, previous = [], None
    for p in wanted:
        if previous is None or any(t == 0 or not hits[t - 1] for t in range(previous, p)):
            starts.append(p)
        previous = p
    return starts


def _spread(found: dict[int, np.ndarray], sequence: np.ndarray, wanted: list[int], p: int, tokens: np.ndarray) -> None:
    """Record the continuation of prefix p and, while it agrees with the sequence, of the prefixes after it."""
    wanted_set = set(wanted)
    offset = 0
    while True:
        if p + offset in wanted_set and p + offset not in found:
            found[p + offset] = tokens[offset:]
        if offset >= tokens.size or tokens[offset] != sequence[p + offset]:
            return
        offset += 1
