"""Greedy generation in batches, and the continuations of many prefixes of a sequence.

Greedy decoding is deterministic: if the continuation of x_<t starts with the true
token x_t, the rest of it *is* the continuation of x_<t+1. So one generation from
prefix t serves every later prefix up to the first token it gets wrong, and which
prefixes need a generation of their own follows from the teacher-forced hits (a
prefix needs one exactly when the model misses the token just before it). On a
memorized sequence most prefixes come for free.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import cast

import numpy as np
import torch

from memscan.model import slots
from memscan.model.cache_layers import in_place_layer_class
from memscan.model.forward import DPD_LAMBDA, DPD_TOP_K, batches_by_length, pad_id, padded, top_k_kept
from memscan.model.loading import LoadedModel
from memscan.scan.ragged import TokenSequence

KV = list[tuple[torch.Tensor, torch.Tensor]]  # per layer: keys, values [kv heads, tokens, head dim]


@torch.no_grad()
def sequence_caches(loaded: LoadedModel, sequences: Sequence[np.ndarray], batch_size: int = 8) -> list[KV]:
    """The KV cache of every sequence (with the BOS context in front), from one forward
    pass per batch: a prompt that is a prefix of a sequence needs no prefill of its own."""
    context = loaded.context
    caches: list[KV | None] = [None] * len(sequences)
    for batch in batches_by_length([len(s) for s in sequences], batch_size):
        rows = [context + [int(t) for t in sequences[i]] for i in batch]
        ids, mask = padded(rows, pad_id(loaded), loaded.device)
        with loaded.autocast():
            cache = loaded.model(input_ids=ids, attention_mask=mask, use_cache=True).cache
        for j, i in enumerate(batch):
            caches[i] = [
                (layer.keys[j, :, : len(rows[j])], layer.values[j, :, : len(rows[j])]) for layer in cache.layers
            ]
    return cast(list[KV], caches)  # every index was filled


def _prefilled(loaded: LoadedModel, kvs: list[KV], lengths: list[int], width: int, capacity: int):
    """A cache holding the first length - 1 tokens of each row, right-aligned to width - 1
    (left padding, masked), so that generation feeds only each prompt's last token.
    Full-attention layers get room for `capacity` tokens in all (see `cache_layers.in_place_layer_class`)."""
    from transformers import DynamicCache
    from transformers.cache_utils import DynamicLayer

    cache = DynamicCache(config=loaded.model.config)
    for layer in range(len(kvs[0])):
        like = kvs[0][layer][0]
        in_place = layer < len(cache.layers) and type(cache.layers[layer]) is DynamicLayer
        room = capacity if in_place else width - 1
        keys = like.new_zeros((len(kvs), like.shape[0], room, like.shape[2]))
        values = torch.zeros_like(keys)
        for j, (kv, length) in enumerate(zip(kvs, lengths)):
            keys[j, :, width - length : width - 1] = kv[layer][0][:, : length - 1]
            values[j, :, width - length : width - 1] = kv[layer][1][:, : length - 1]
        if in_place:
            cache.layers[layer] = in_place_layer_class()(keys, values, width - 1)
        else:
            cache.update(keys, values, layer)
    return cache


Choose = Callable[[torch.Tensor], torch.Tensor]  # next-token logits [rows, vocab] -> token per row


def greedy(
    loaded: LoadedModel,
    prompts: Sequence[TokenSequence],
    n_new: Sequence[int],
    batch_size: int = 32,
    progress=None,
    caches: Sequence[KV] | None = None,
) -> list[np.ndarray]:
    """Exactly n_new[i] greedily generated tokens after prompts[i] (no stop at end of text).

    Prompts are left-padded and generated in batches with a KV cache; an empty prompt
    starts from the model's start token. The model's BOS context goes in front of all.
    caches[i], when given, is the KV cache of a sequence that prompts[i] begins (see
    `sequence_caches`): the prompt is then not prefilled again.
    """
    return _generate(loaded, prompts, n_new, batch_size, progress, caches, lambda logits: logits.argmax(-1))


def sampled(
    loaded: LoadedModel,
    prompts: Sequence[TokenSequence],
    n_new: Sequence[int],
    temperature: float,
    seed: int,
    batch_size: int = 32,
    progress=None,
    top_k: int | None = None,
    caches: Sequence[KV] | None = None,
) -> list[np.ndarray]:
    """Like `greedy`, but each token drawn from the softmax of the logits / temperature
    (over the top_k largest when given), from a generator seeded once (the same call
    draws the same tokens)."""
    generator = torch.Generator(device=loaded.device).manual_seed(seed)

    def draw(logits: torch.Tensor) -> torch.Tensor:
        scaled = logits.float() / temperature
        probs = torch.softmax(scaled if top_k is None else top_k_kept(scaled, top_k), dim=-1)
        return torch.multinomial(probs, 1, generator=generator)[:, 0]

    return _generate(loaded, prompts, n_new, batch_size, progress, caches, draw)


@torch.no_grad()
def _generate(
    loaded: LoadedModel,
    prompts: Sequence[TokenSequence],
    n_new: Sequence[int],
    batch_size: int,
    progress,
    caches: Sequence[KV] | None,
    choose: Choose,
) -> list[np.ndarray]:
    context, pad = loaded.context, pad_id(loaded)
    rows = [context + ([int(t) for t in p] if len(p) else ([] if context else [loaded.start_token])) for p in prompts]
    capacity = max((len(r) + n for r, n in zip(rows, n_new)), default=0)
    if caches is not None and not slots.windows_hold(loaded.model.config, capacity):
        caches = None  # a sliding-window layer would drop part of a prefilled cache: prefill as `generate` does
    if caches is not None and slots.supported(loaded, capacity):
        return slots.decode_in_slots(loaded, rows, n_new, caches, batch_size, choose, progress)
    # longest generations first, and prompts of similar length together
    order = sorted((i for i in range(len(rows)) if n_new[i] > 0), key=lambda i: (-n_new[i], len(rows[i]), i))
    out = [np.zeros(0, np.uint32) if n <= 0 else None for n in n_new]
    for start in range(0, len(order), batch_size):
        batch = order[start : start + batch_size]
        ids, mask = padded([rows[i] for i in batch], pad, loaded.device, left=True)
        width = ids.shape[1]
        cache = None
        if caches is not None and width > 1 and all(len(prompts[i]) or context for i in batch):
            lengths = [len(rows[i]) for i in batch]
            capacity = width - 1 + max(n_new[i] for i in batch)
            cache = _prefilled(loaded, [caches[i] for i in batch], lengths, width, capacity)
        with loaded.autocast():
            generated = _decode(loaded.model, ids, mask, cache, [n_new[i] for i in batch], choose)
        for i, tokens in zip(batch, generated):
            out[i] = tokens
        if progress:
            progress(len(batch))
    return cast(list[np.ndarray], out)  # every index was filled


def _decode(
    model, ids: torch.Tensor, mask: torch.Tensor, cache, lengths: list[int], choose: Choose
) -> list[np.ndarray]:
    """Decoding of left-padded prompts, each row leaving the batch as soon as it
    has its lengths[j] tokens (so a batch costs what its rows need, not its longest)."""
    cached = cache.get_seq_length() if cache is not None else 0
    feed, positions = ids[:, cached:], (mask.cumsum(-1) - 1).clamp_min(0)[:, cached:]
    alive = torch.arange(len(lengths))
    remaining = torch.as_tensor(lengths)
    steps: list[tuple[torch.Tensor, torch.Tensor]] = []  # (rows, their next tokens) per step
    while bool((remaining > 0).any()):
        result = model(
            input_ids=feed, attention_mask=mask, position_ids=positions, cache=cache, use_cache=True, logits_to_keep=1
        )
        cache, chosen = result.cache, choose(result.logits[:, -1])
        steps.append((alive, chosen.cpu()))
        remaining = remaining - 1
        keep = torch.nonzero(remaining > 0)[:, 0]
        if keep.numel() < alive.numel():
            cache.batch_select_indices(keep.to(mask.device))
            alive, remaining, chosen, mask, positions = (
                alive[keep],
                remaining[keep],
                chosen[keep.to(chosen.device)],
                mask[keep.to(mask.device)],
                positions[keep.to(positions.device)],
            )
        mask = torch.cat([mask, mask.new_ones((mask.shape[0], 1))], dim=1)
        feed, positions = chosen[:, None], positions[:, -1:] + 1
    generated: list[list[int]] = [[] for _ in lengths]
    for rows, tokens in steps:
        for row, token in zip(rows.tolist(), tokens.tolist()):
            generated[row].append(token)
    return [np.asarray(g, dtype=np.uint32) for g in generated]


@dataclass
class PrefixContinuations:
    """Continuations to full length of prefixes of sequences (flat, aligned lists)."""

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
    caches: Sequence[KV] | None = None,
) -> PrefixContinuations:
    """For each sequence i and each p in prefixes[i], the greedy continuation of its first
    p tokens up to its full length, generating only where no earlier continuation serves.

    hits[i][t - 1] says whether teacher-forced argmax predicts token t (0-based) of
    sequence i. A generation is reused only where its own tokens agree with the
    sequence, so a hit that batched numerics flip costs one more generation, never a
    wrong continuation. `caches`: the sequences' KV caches when the caller has them
    (`sequence_caches`); made here when a prefix needs a generation otherwise.
    """
    wanted = [sorted(set(int(p) for p in ps)) for ps in prefixes]
    wanted_sets = [set(ps) for ps in wanted]
    found: list[dict[int, np.ndarray]] = [{} for _ in sequences]
    starts = [_needing_generation(ps, h) for ps, h in zip(wanted, hits)]
    n_generated = 0
    kv = caches if caches is not None else (sequence_caches(loaded, sequences) if any(starts) else [])
    while any(starts):
        jobs = [(i, p) for i, ps in enumerate(starts) for p in sorted(ps)]
        prompts = [sequences[i][:p] for i, p in jobs]
        lengths = [len(sequences[i]) - p for i, p in jobs]
        generated = greedy(loaded, prompts, lengths, batch_size, progress, [kv[i] for i, _ in jobs])
        n_generated += len(jobs)
        for (i, p), tokens in zip(jobs, generated):
            _spread(found[i], sequences[i], wanted_sets[i], p, tokens)
        starts = [[p for p in ps if p not in found[i]][:1] for i, ps in enumerate(wanted)]
    owner = [i for i, ps in enumerate(wanted) for _ in ps]
    prefix = [p for ps in wanted for p in ps]
    continuations = [found[i][p] for i, p in zip(owner, prefix)]
    return PrefixContinuations(np.asarray(owner, np.uint32), np.asarray(prefix, np.uint32), continuations, n_generated)


def sampled_continuations_of_prefixes(
    loaded: LoadedModel,
    sequences: Sequence[np.ndarray],
    prefixes: Sequence[Sequence[int]],
    seed: int,
    batch_size: int = 32,
    progress=None,
    caches: Sequence[KV] | None = None,
) -> PrefixContinuations:
    """For each sequence i and each p in prefixes[i], one continuation of its first p
    tokens up to its full length drawn as the papers' DPD samples (softmax of the logits
    x lambda over the top 50, as `forward.dpd_probabilities`), the generator seeded once
    with `seed`. A draw serves no other prefix, so every prefix is generated. `caches`: as
    for `continuations_of_prefixes`."""
    jobs = [(i, p) for i, ps in enumerate(prefixes) for p in sorted(set(int(p) for p in ps))]
    kv = caches if caches is not None else (sequence_caches(loaded, sequences) if jobs else [])
    prompts = [sequences[i][:p] for i, p in jobs]
    lengths = [len(sequences[i]) - p for i, p in jobs]
    drawn = sampled(
        loaded, prompts, lengths, 1 / DPD_LAMBDA, seed, batch_size, progress, DPD_TOP_K, [kv[i] for i, _ in jobs]
    )
    owner = np.asarray([i for i, _ in jobs], np.uint32)
    return PrefixContinuations(owner, np.asarray([p for _, p in jobs], np.uint32), drawn, len(jobs))


def _needing_generation(wanted: list[int], hits: np.ndarray) -> list[int]:
    """The wanted prefixes that the continuation of the previous wanted one does not
    reach by the teacher-forced hits (the token before prefix 1 is never predicted)."""
    starts, previous = [], None
    for p in wanted:
        if previous is None or any(t == 0 or not hits[t - 1] for t in range(previous, p)):
            starts.append(p)
        previous = p
    return starts


def _spread(found: dict[int, np.ndarray], sequence: np.ndarray, wanted: set[int], p: int, tokens: np.ndarray) -> None:
    """Record the continuation of prefix p and, while it agrees with the sequence, of the prefixes after it."""
    offset = 0
    while True:
        if p + offset in wanted and p + offset not in found:
            found[p + offset] = tokens[offset:]
        if offset >= tokens.size or tokens[offset] != sequence[p + offset]:
            return
        offset += 1
