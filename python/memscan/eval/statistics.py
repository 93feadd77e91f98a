"""95% intervals for utility figures and seeded subsamples of task items."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

Z95 = 1.959963984540054
BOOTSTRAP_SAMPLES = 1000


def wilson_interval(successes: int, n: int) -> tuple[float, float]:
    if n == 0:
        return (float("nan"), float("nan"))
    p = successes / n
    centre = (p + Z95**2 / (2 * n)) / (1 + Z95**2 / n)
    half = Z95 * np.sqrt(p * (1 - p) / n + Z95**2 / (4 * n * n)) / (1 + Z95**2 / n)
    return (float(centre - half), float(centre + half))


def bootstrap_interval(statistic, columns: Sequence[np.ndarray], seed: int) -> tuple[float, float]:
    """Percentile interval of statistic(*columns) over items resampled with replacement."""
    n = len(columns[0])
    if n < 2:
        return (float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, n, size=(BOOTSTRAP_SAMPLES, n))
    values = [statistic(*(c[d] for c in columns)) for d in draws]
    return (float(np.quantile(values, 0.025)), float(np.quantile(values, 0.975)))


def subsample(items: list, limit: int | None, seed: int) -> list:
    if limit is None or limit >= len(items):
        return items
    picked = np.random.default_rng(seed).choice(len(items), size=limit, replace=False)
    return [items[i] for i in sorted(picked)]
