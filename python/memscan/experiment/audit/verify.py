"""The verify step's per-region verdict: which memorized regions a model still reproduces."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from memscan.experiment.audit.find import FindOptions
from memscan.experiment.audit.regions import Regions, places_of


def generations_per_region(index, found: pa.Table, regions: Regions, options: FindOptions) -> tuple[np.ndarray, list]:
    """How many memorized generations of `found` fall in each region, and the places of
    those that fall in none (memorized text the forget set does not hold)."""
    places = places_of(index, found, options)
    tokens = [
        index.windows(np.array([p.doc]), np.array([p.start]), p.end - p.start)[0] if p.end > p.start else np.zeros(0)
        for p in places
    ]
    owner = regions.assign(places, tokens)
    counts = np.bincount(owner[owner >= 0], minlength=len(regions.ids))
    return counts, [p for p, o in zip(places, owner) if o < 0]


def same_prompt_scores(after: pa.Table, regions: Regions, column: str) -> np.ndarray:
    """`column` of the generation from the prompt that best evidenced each region, made
    again by another model (`after` repeats the find on the same prompts, row for row)."""
    values = after.column(column).fill_null(0).to_numpy(zero_copy_only=False)
    return np.asarray(values[regions.table.column("best_row").to_numpy()])


def matched_spans(after: pa.Table, regions: Regions, decode) -> list[str]:
    """The corpus span the best-evidence prompt's generation still matches, as text."""
    rows = regions.table.column("best_row").to_pylist()
    picked = after.take(pa.array(rows, pa.int64())).select(["generation", "match_start", "longest_match"])
    return [
        decode(g[s : s + n])
        for g, s, n in zip(*(picked.column(c).to_pylist() for c in ("generation", "match_start", "longest_match")))
    ]
