"""Packing token sequences into the flat (tokens, offsets) pair the Rust core borrows."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from memscan import _core
from memscan.errors import UserError

MAX_TOKEN_ID = 2**32 - 1
TokenSequence = Sequence[int] | np.ndarray  # one sequence of token ids


def as_tokens(seq) -> np.ndarray:
    """One sequence of token ids as a contiguous uint32 array (ids must fit in 32 bits)."""
    if isinstance(seq, np.ndarray) and seq.dtype == np.uint32:
        return np.ascontiguousarray(seq.reshape(-1))
    array = np.asarray(seq)
    if array.size == 0:
        return np.zeros(0, dtype=np.uint32)
    if array.ndim != 1 or not np.issubdtype(array.dtype, np.integer):
        raise UserError("token sequences must be 1-D arrays of integer ids")
    if array.min() < 0 or array.max() > MAX_TOKEN_ID:
        raise UserError(f"token ids must lie in 0..{MAX_TOKEN_ID}")
    return array.astype(np.uint32)


@dataclass(frozen=True)
class Packed:
    """Sequences already flat: sequence i is tokens[offsets[i]:offsets[i + 1]].

    Every batch function accepts one in place of a list of sequences, which skips
    packing (the cost that dominates for many short sequences)."""

    tokens: np.ndarray
    offsets: np.ndarray

    @classmethod
    def from_padded(cls, rows: np.ndarray, lengths: Sequence[int]) -> Packed:
        """Row i's first lengths[i] tokens of a 2-D array (e.g. a batch of generations)."""
        counts = np.asarray(lengths, dtype=np.int64)
        keep = np.arange(rows.shape[1])[None, :] < counts[:, None]
        offsets = np.zeros(len(counts) + 1, dtype=np.uint64)
        np.cumsum(counts, out=offsets[1:])
        return cls(np.ascontiguousarray(rows[keep], dtype=np.uint32), offsets)

    def __len__(self) -> int:
        return len(self.offsets) - 1


def pack(seqs: Sequence | Packed) -> tuple[np.ndarray, np.ndarray]:
    """(tokens, offsets): sequence i is tokens[offsets[i]:offsets[i + 1]]."""
    if isinstance(seqs, Packed):
        return as_tokens(seqs.tokens), np.ascontiguousarray(seqs.offsets, dtype=np.uint64)
    if isinstance(seqs, list):
        packed = _core.pack_arrays(seqs)  # None unless every item is a contiguous 1-D uint32 array
        if packed is not None:
            return packed
    arrays = [s if isinstance(s, np.ndarray) and s.dtype == np.uint32 and s.ndim == 1 else as_tokens(s) for s in seqs]
    offsets = np.zeros(len(arrays) + 1, dtype=np.uint64)
    np.cumsum([a.size for a in arrays], out=offsets[1:])
    tokens = np.concatenate(arrays) if arrays else np.zeros(0, dtype=np.uint32)
    return np.ascontiguousarray(tokens, dtype=np.uint32), offsets


def check_token_ids(name: str, tokens, vocab_size: int, vocabulary: str) -> None:
    """Refuse a sequence holding an id that `vocabulary` (of `vocab_size` ids) cannot produce."""
    if isinstance(tokens, np.ndarray) and tokens.dtype == np.uint32:
        outside = np.flatnonzero(tokens >= vocab_size)
        bad = int(tokens[outside[0]]) if outside.size else None
    else:
        bad = next((int(t) for t in tokens if not 0 <= t < vocab_size), None)
    if bad is not None:
        raise UserError(f"{name}: token id {bad} is out of range for {vocabulary} (vocabulary {vocab_size})")


def unpack(values: np.ndarray, offsets: np.ndarray) -> list[np.ndarray]:
    """Split a flat array aligned with packed tokens back into one array per sequence."""
    return [values[offsets[i] : offsets[i + 1]] for i in range(len(offsets) - 1)]
