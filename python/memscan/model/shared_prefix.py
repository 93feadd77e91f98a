"""Target scores of groups of sequences that begin alike, each group's common beginning
computed once.

A multiple-choice item scores every choice after the same context (HellaSwag's
paragraph, ARC's question, PubMedQA's abstract): scored apart, the context passes
through the model once per choice. Here it passes once per item. The prefix pass
(prompts left-padded, so all of them end at one column) leaves a KV cache; its rows are
repeated for the members of each group, and the members' remaining tokens continue
from it with their true positions. The scores equal `forward.target_scores` up to
floating-point rounding (other matrix shapes); the tests hold them together.

Used where a prefix's cache is exact for what follows it (a transformers model whose
sliding windows, if any, hold the longest row) and where sharing at least halves the
tokens to compute: the second pass per batch costs more than a smaller saving brings
(measured on SmolLM2-135M, benches/README.md: ARC and PubMedQA, 2.1-2.9x fewer tokens,
score 1.4-1.8x faster; PIQA, COPA and WinoGrande, 1.1-1.5x fewer, 6-26% slower).
Other calls score the groups apart.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from memscan.model.forward import pad_id, padded, target_scores, targets_of
from memscan.model.loading import LoadedModel
from memscan.model.slots import windows_hold

Scores = tuple[np.ndarray, np.ndarray]  # per scored token: log-probability, greedy hit
MIN_SAVING = 2.0  # tokens scored apart / tokens with shared prefixes, below which groups are scored apart


def grouped_target_scores(
    loaded: LoadedModel,
    groups: Sequence[Sequence[list[int]]],
    last: Sequence[Sequence[int]],
    batch_size: int = 8,
    progress=None,
    min_saving: float = MIN_SAVING,
) -> list[list[Scores]]:
    """`target_scores` of every member of every group (the last `last[g][m]` tokens of
    member m of group g), with a batch holding up to `batch_size` members."""
    context = loaded.context
    rows = [[context + list(member) for member in group] for group in groups]
    longest = max((len(r) for group in rows for r in group), default=0)
    prefixes = [_prefix_length(group, wanted) for group, wanted in zip(rows, last)]
    apart_tokens = sum(len(r) for group in rows for r in group)
    saved = sum((len(group) - 1) * p for group, p in zip(rows, prefixes))
    worth_it = apart_tokens >= min_saving * (apart_tokens - saved)
    shared = [g for g, p in enumerate(prefixes) if p > 0] if worth_it and _caches_exact(loaded, longest) else []
    apart = sorted(set(range(len(groups))) - set(shared))
    flat = target_scores(
        loaded, [m for g in apart for m in groups[g]], [n for g in apart for n in last[g]], batch_size, progress
    )
    scores: list[list[Scores]] = [[] for _ in groups]
    for g, member_scores in zip(apart, _regroup(flat, [groups[g] for g in apart])):
        scores[g] = member_scores
    for batch in _batches({g: len(groups[g]) for g in shared}, prefixes, batch_size):
        for g, member_scores in zip(
            batch,
            _score_batch(loaded, [rows[g] for g in batch], [prefixes[g] for g in batch], [last[g] for g in batch]),
        ):
            scores[g] = member_scores
        if progress:
            progress(sum(len(groups[g]) for g in batch))
    return scores


def _prefix_length(rows: list[list[int]], last: Sequence[int]) -> int:
    """Tokens every row of a group shares before the first position whose logits score a
    token (a shared token's logits are never needed: the prefix pass keeps none)."""
    limit = min(len(r) - 1 - min(n, len(r) - 1) for r, n in zip(rows, last))
    shared = 0
    while shared < limit and all(r[shared] == rows[0][shared] for r in rows):
        shared += 1
    return shared


def _caches_exact(loaded: LoadedModel, longest: int) -> bool:
    from transformers import PreTrainedModel

    return isinstance(loaded.model, PreTrainedModel) and windows_hold(loaded.model.config, longest)


def _batches(sizes: dict[int, int], prefixes: list[int], batch_size: int) -> list[list[int]]:
    """The groups `sizes` names (group -> members), those of similar prefix length
    together, up to `batch_size` members a batch (at least one group)."""
    batches: list[list[int]] = []
    for g in sorted(sizes, key=lambda g: (prefixes[g], g)):
        if batches and sum(sizes[h] for h in batches[-1]) + sizes[g] <= batch_size:
            batches[-1].append(g)
        else:
            batches.append([g])
    return batches


@torch.no_grad()
def _score_batch(
    loaded: LoadedModel, groups: list[list[list[int]]], shared: list[int], last: list[Sequence[int]]
) -> list[list[Scores]]:
    """One batch: the groups' prefixes (the first shared[i] tokens of groups[i], at least
    one each) in one pass, then every member's tail from the prefix's cache."""
    pad, device = pad_id(loaded), loaded.device
    owner = [i for i, group in enumerate(groups) for _ in group]
    members = [row for group in groups for row in group]
    wanted = [min(n, len(row) - 1) for ns, group in zip(last, groups) for n, row in zip(ns, group)]
    ids, prefix_mask = padded([group[0][:p] for group, p in zip(groups, shared)], pad, device, left=True)
    with loaded.autocast():
        cache = loaded.model(
            input_ids=ids,
            attention_mask=prefix_mask,
            position_ids=(prefix_mask.cumsum(-1) - 1).clamp_min(0),
            use_cache=True,
            logits_to_keep=1,
        ).cache
    cache.batch_select_indices(torch.as_tensor(owner, device=device))
    tails = [row[shared[i] :] for row, i in zip(members, owner)]
    ids, mask = padded(tails, pad, device)
    positions = torch.as_tensor([shared[i] for i in owner], device=device)[:, None] + torch.arange(
        ids.shape[1], device=device
    )
    ends = [len(t) - 1 for t in tails]  # the position (in the tail) of a row's last token
    first = min(end - n for end, n in zip(ends, wanted))
    keep = torch.arange(first, max(ends), device=device)
    with loaded.autocast():
        logits = loaded.model(
            input_ids=ids,
            attention_mask=torch.cat([prefix_mask[owner], mask], dim=1),
            position_ids=positions,
            cache=cache,
            logits_to_keep=keep,
        ).logits
    scored: list[list[Scores]] = [[] for _ in groups]
    for j, (i, n) in enumerate(zip(owner, wanted)):
        start = ends[j] - n
        scored[i].append(targets_of(logits[j, start - first : ends[j] - first], ids[j, start + 1 : ends[j] + 1]))
    return scored


def _regroup(flat: list[Scores], groups: Sequence[Sequence[list[int]]]) -> list[list[Scores]]:
    it = iter(flat)
    return [[next(it) for _ in group] for group in groups]
