"""memscan's two-sided z-score test against unlearning (not the paper's MIAU, which is
`miau.py`).

The attacker holds a reference sample known to be unseen. A sequence left memorized
scores too high, one pushed too far scores too low: the test scores each candidate by
how far its g and its loss lie from the reference distribution, in either direction
(the sum of squared z-scores: `zscore`; g alone: `zscore_g`). The calibrated form
`zscore_swap` first subtracts the same quantities measured on copies of the sequence
with adjacent tokens swapped, which removes how hard the sequence is to begin with.
"""

from __future__ import annotations

import numpy as np

from memscan.attack.options import AttackOptions
from memscan.model.forward import TokenStats, every_target, hit_rate, mean_logprob
from memscan.model.loading import LoadedModel
from memscan.model.ranks import ONE, Ranks


def split_unseen(n_unseen: int, reference_share: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(reference, candidate) indices of the unseen set, a fixed-seed random split."""
    order = np.random.default_rng(seed).permutation(n_unseen)
    n_reference = int(round(n_unseen * reference_share))
    return np.sort(order[:n_reference]), np.sort(order[n_reference:])


def swap_neighbours(sequence: np.ndarray, count: int, swap_share: float, rng: np.random.Generator) -> list[np.ndarray]:
    """Copies of `sequence` with a share of positions swapped with the next token."""
    out = []
    for _ in range(count):
        copy = sequence.copy()
        n_swaps = max(1, int(round(swap_share * (len(copy) - 1))))
        for p in rng.choice(len(copy) - 1, size=min(n_swaps, len(copy) - 1), replace=False):
            copy[p], copy[p + 1] = copy[p + 1], copy[p]
        out.append(copy)
    return out


def deviation(values: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Squared z-score of each value against the reference sample (two-sided)."""
    std = reference.std()
    return ((values - reference.mean()) / (std if std > 0 else 1.0)) ** 2


def zscore_scores(stats: list[TokenStats], cut: int) -> dict[str, np.ndarray]:
    """`zscore` and `zscore_g` of stats[:cut] (the candidates) against stats[cut:] (the reference)."""
    g = np.array([s.memorization_accuracy for s in stats])
    loss = np.array([s.loss for s in stats])
    return {
        "zscore": deviation(g[:cut], g[cut:]) + deviation(loss[:cut], loss[cut:]),
        "zscore_g": deviation(g[:cut], g[cut:]),
    }


def swap_calibrated(
    loaded: LoadedModel,
    everyone: list[np.ndarray],
    stats: list[TokenStats],
    cut: int,
    options: AttackOptions,
    progress=None,
    ranks: Ranks = ONE,
) -> np.ndarray:
    """`zscore_swap`: the test on (score - mean score of the sequence's swapped copies), for
    g and the loss; everyone[:cut] are the candidates, the rest the reference."""
    rng, count = np.random.default_rng(options.seed + 1), options.swap_neighbours
    copies = [c for s in everyone for c in swap_neighbours(s, count, options.swap_share, rng)]
    bar = progress("swap neighbours", len(copies)) if progress else None
    copy_scores = every_target(loaded, copies, options.batch_size, bar, ranks)
    n_g = np.array([hit_rate(hits) for _, hits in copy_scores]).reshape(len(everyone), count).mean(1)
    n_loss = np.array([-mean_logprob(logp) for logp, _ in copy_scores]).reshape(len(everyone), count).mean(1)
    g = np.array([s.memorization_accuracy for s in stats]) - n_g
    loss = np.array([s.loss for s in stats]) - n_loss
    return deviation(g[:cut], g[cut:]) + deviation(loss[:cut], loss[cut:])
