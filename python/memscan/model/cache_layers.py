"""KV-cache layers that write into buffers allocated once, for the two decoding paths
(generation's batches, slots' continuous batching). transformers' DynamicLayer
concatenates instead, copying the whole cache at every step: a fifth of decoding time
on a CPU (benches/README.md). transformers is imported only when a layer is first made."""

from __future__ import annotations

import functools

import torch


@functools.cache
def buffered_layer_class():
    """A DynamicLayer over (keys, values) buffers [rows, heads, columns, head dim] whose
    first `width` columns are what attention sees; subclasses say how a step writes."""
    from transformers.cache_utils import DynamicLayer

    class BufferedLayer(DynamicLayer):
        def __init__(self, keys: torch.Tensor, values: torch.Tensor, width: int):
            super().__init__()
            self.device, self.is_initialized = keys.device, True
            self.buffers, self.width = (keys, values), width
            self._view()

        def _view(self) -> None:
            self.keys, self.values = (b[:, :, : self.width] for b in self.buffers)

        def batch_select_indices(self, indices: torch.Tensor) -> None:
            keys, values = self.buffers
            self.buffers = (keys[indices], values[indices])
            self._view()

    return BufferedLayer


@functools.cache
def in_place_layer_class():
    """Rows that advance together: a step appends its tokens after the first `width` columns."""

    class InPlaceLayer(buffered_layer_class()):
        def update(self, key_states, value_states, *args, **kwargs):
            end = self.width + key_states.shape[-2]
            for buffer, states in zip(self.buffers, (key_states, value_states)):
                buffer[:, :, self.width : end] = states
            self.width = end
            self._view()
            return self.keys, self.values

    return InPlaceLayer


@functools.cache
def slot_layer_class():
    """Decoding slots: a step writes each slot's one new token at that slot's own column
    (`set_step`), and attention sees the first `width` columns."""

    class SlotLayer(buffered_layer_class()):
        def __init__(self, keys: torch.Tensor, values: torch.Tensor):
            super().__init__(keys, values, 1)
            self.columns = torch.zeros(keys.shape[0], dtype=torch.long, device=keys.device)

        def get_seq_length(self) -> int:
            return self.width - 1  # the step's token is the last of `width` columns

        def update(self, key_states, value_states, *args, **kwargs):
            rows = torch.arange(key_states.shape[0], device=key_states.device)
            for buffer, states in zip(self.buffers, (key_states, value_states)):
                buffer[rows, :, self.columns] = states[:, :, 0]
            return self.keys, self.values

        def set_step(self, columns: torch.Tensor, width: int) -> None:
            self.columns, self.width = columns, width
            self._view()

    return SlotLayer
