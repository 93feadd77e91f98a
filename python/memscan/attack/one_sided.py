"""The standard one-sided membership attacks, for comparison with the literature:
LOSS, zlib ratio, Min-K% and Min-K%++ (higher score = guessed member)."""

from __future__ import annotations

import zlib
from collections.abc import Sequence

import numpy as np

from memscan.model.forward import TokenStats


def one_sided_scores(stats: Sequence[TokenStats], texts: Sequence[str], min_k: float) -> dict[str, np.ndarray]:
    """LOSS, zlib, Min-K%, Min-K%++: higher means "more likely trained on"."""

    def lowest_mean(values: np.ndarray) -> float:
        k = max(1, int(np.ceil(min_k * values.size)))
        return float(np.sort(values)[:k].mean())

    loss = np.array([s.loss for s in stats])
    zlib_bytes = np.array([len(zlib.compress(t.encode("utf-8"))) for t in texts], dtype=np.float64)
    return {
        "loss": -loss,
        "zlib": -loss / np.maximum(zlib_bytes, 1.0),
        "min_k": np.array([lowest_mean(s.logprobs) for s in stats]),
        "min_k_pp": np.array([lowest_mean(s.minkpp) for s in stats]),
    }
