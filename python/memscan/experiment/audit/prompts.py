"""Where the audit prompts the model: seeded windows of the indexed corpus.

A window is k prompt tokens followed by the m tokens the corpus continues with. Windows
are drawn uniformly over every place one fits inside a document (never across two),
from the index's document lengths alone, so a corpus of billions of tokens is never
read to draw them; their tokens are read from the memory-mapped index per chunk.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from memscan.errors import UserError
from memscan.scan.index import CorpusIndex


@dataclass(frozen=True)
class Windows:
    """Where each window starts: document number and token offset in it (aligned)."""

    doc: np.ndarray  # uint64
    start: np.ndarray  # uint64

    def __len__(self) -> int:
        return len(self.doc)

    def take(self, rows: range | np.ndarray) -> Windows:
        return Windows(self.doc[rows], self.start[rows])


def places_per_document(index: CorpusIndex, length: int) -> np.ndarray:
    """How many windows of `length` tokens fit in each document."""
    return np.maximum(index.document_lengths().astype(np.int64) - length + 1, 0)


def sample_windows(index: CorpusIndex, n: int, length: int, seed: int, option: str = "--prompts") -> Windows:
    """`n` distinct windows of `length` tokens, uniform over the corpus, in draw order
    (`option`: the command-line option that asked for `n`, for the error)."""
    places = places_per_document(index, length)
    total = int(places.sum())
    if total == 0:
        longest = int(index.document_lengths().max(initial=0))
        raise UserError(
            f"no document of the index holds k + m = {length} tokens (the longest holds {longest}); "
            "pass a smaller --k or --m"
        )
    if n > total:
        raise UserError(
            f"{option} {n} is more than the {total} places a window of k + m = {length} tokens fits in the corpus"
        )
    picks = np.random.default_rng(seed).choice(total, size=n, replace=False)
    ends = np.cumsum(places)
    doc = np.searchsorted(ends, picks, side="right")
    start = picks - (ends[doc] - places[doc])
    return Windows(doc.astype(np.uint64), start.astype(np.uint64))
