"""Greedy continuations of sequence prefixes with continuous batching.

`generation.greedy` decodes a batch until its last row is done, so rows that finish
early leave the batch smaller and the matrix products less efficient (on a CPU the
cost of a decoding step barely changes between 16 and 64 rows). Here a fixed number
of slots decode together and a slot takes the next prompt as soon as its row is done.
Each slot keeps its tokens from column 0 of one key/value buffer per layer (right
padding, written in place) and gets its own positions and a 4D padding mask, so rows
of any prompt length share a step. The prompt's keys and values come from the
sequence's own cache (`generation.sequence_caches`): no prompt is prefilled.

Used where every cache layer attends over all tokens (full attention, or a sliding
window longer than the rows) and attention takes a boolean (sdpa) or additive (eager)
mask; other models take the batch path.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch

from memscan.model.cache_layers import slot_layer_class
from memscan.model.loading import LoadedModel

KV = list[tuple[torch.Tensor, torch.Tensor]]
Choose = Callable[[torch.Tensor], torch.Tensor]

MASKS = ("sdpa", "eager")


def supported(loaded: LoadedModel, capacity: int) -> bool:
    """Whether `decode_in_slots` can run this model on rows of up to `capacity` tokens:
    every cache layer a plain `DynamicLayer`, or a sliding-window one whose window holds
    them all (it then attends like a full one), and a mask format this module writes."""
    from transformers import DynamicCache
    from transformers.cache_utils import DynamicLayer, DynamicSlidingWindowLayer

    config = loaded.model.config
    if getattr(config, "_attn_implementation", None) not in MASKS:
        return False
    if not windows_hold(config, capacity):
        return False  # a window bounds attention by column, which right padding would shift
    try:
        layers = DynamicCache(config=config).layers
    except Exception:  # a config DynamicCache cannot lay out: not one for this path
        return False

    # sliding-window layers take their window from the config, which holds the rows (above)
    return bool(layers) and all(type(layer) in (DynamicLayer, DynamicSlidingWindowLayer) for layer in layers)


def windows_hold(config, capacity: int) -> bool:
    """Whether no sliding attention window of the model (`sliding_window`, GPT-Neo's
    `window_size`) is shorter than `capacity` tokens."""
    windows = [getattr(config, name, None) for name in ("sliding_window", "window_size")]
    return not any(isinstance(w, int) and w < capacity for w in windows)


@torch.no_grad()
def decode_in_slots(
    loaded: LoadedModel,
    rows: Sequence[list[int]],
    n_new: Sequence[int],
    caches: Sequence[KV],
    slots: int,
    choose: Choose,
    progress=None,
) -> list[np.ndarray]:
    """Exactly n_new[i] tokens after rows[i] (context and prompt ids, not empty), whose
    first len(rows[i]) - 1 tokens' keys and values are the start of caches[i]."""
    from transformers import DynamicCache

    order = sorted((i for i in range(len(rows)) if n_new[i] > 0), key=lambda i: (-n_new[i], i))
    out: list[list[int]] = [[] for _ in rows]
    slots = max(1, min(slots, len(order)))
    capacity = max(len(rows[i]) + n_new[i] for i in order) if order else 1
    cache = DynamicCache(config=loaded.model.config)
    like = [kv[0] for kv in caches[order[0]]] if order else []
    layers = [
        slot_layer_class()(*(k.new_zeros((slots, k.shape[0], capacity, k.shape[2])) for _ in range(2))) for k in like
    ]
    cache.layers = layers
    device = loaded.device
    job = [-1] * slots  # which row each slot decodes
    length = torch.zeros(slots, dtype=torch.long)  # tokens each slot holds before this step's
    feed = torch.zeros(slots, dtype=torch.long)
    left = torch.zeros(slots, dtype=torch.long)
    pending = iter(order)

    def admit(slot: int) -> bool:
        i = next(pending, None)
        if i is None:
            return False
        held = len(rows[i]) - 1
        for layer, (keys, values) in zip(layers, caches[i]):
            layer.buffers[0][slot, :, :held] = keys[:, :held]
            layer.buffers[1][slot, :, :held] = values[:, :held]
        job[slot], length[slot], feed[slot], left[slot] = i, held, rows[i][-1], n_new[i]
        return True

    live = [s for s in range(slots) if admit(s)]
    while live:
        width = int(length.max()) + 1
        columns = length.to(device)
        for layer in layers:
            layer.set_step(columns, width)
        visible = torch.arange(width, device=device)[None, :] <= columns[:, None]
        mask = _attention_mask(visible, loaded.model.config._attn_implementation, loaded.model.dtype)
        with loaded.autocast():
            logits = loaded.model(
                input_ids=feed.to(device)[:, None],
                attention_mask=mask,
                position_ids=columns[:, None],
                cache=cache,
                use_cache=True,
                logits_to_keep=1,
            ).logits[:, -1]
        chosen = choose(logits).cpu()
        length += 1
        left -= 1
        feed = chosen.clone()
        finished = []
        for slot, token in enumerate(chosen.tolist()):
            out[job[slot]].append(token)
            if left[slot] == 0:
                finished.append(slot)
        for slot in finished:
            if progress:
                progress(1)
            if not admit(slot):
                job[slot] = -1
        keep = [s for s in range(len(job)) if job[s] >= 0]
        if keep and len(keep) < len(job):  # no prompts left to admit: the batch shrinks
            index = torch.as_tensor(keep, dtype=torch.long)
            cache.batch_select_indices(index.to(device))
            job = [job[s] for s in keep]
            length, feed, left = length[index], feed[index], left[index]
        live = keep
    return [np.asarray(tokens, dtype=np.uint32) for tokens in out]


def _attention_mask(visible: torch.Tensor, implementation: str, dtype: torch.dtype) -> torch.Tensor:
    """[rows, 1, 1, width] as the attention function takes it: True = attend for sdpa,
    0 / the dtype's minimum added to the scores for eager."""
    mask = visible[:, None, None, :]
    if implementation == "sdpa":
        return mask
    return torch.zeros(mask.shape, dtype=dtype, device=mask.device).masked_fill(~mask, torch.finfo(dtype).min)
