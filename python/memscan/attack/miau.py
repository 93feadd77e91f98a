"""MIAU: membership inference against unlearning (docs/definitions.md).

The attacker holds the released model, a pool of candidates (the forget set mixed
with unseen sequences of the same distribution) and a reference sample known to be
unseen. A sequence left memorized scores too high, one pushed too far scores too
low: MIAU scores each candidate by how far its g and its loss lie from the
reference distribution, in either direction (the sum of squared z-scores). Its
calibrated form first subtracts the same quantities measured on perturbed
neighbours of the candidate (adjacent-token swaps), which removes how hard the
sequence is to begin with (as the neighbourhood attack of Mattern et al. 2023 does
for the loss). The standard one-sided attacks (LOSS, zlib ratio, Min-K%, Min-K%++)
run beside it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from memscan.attack.metrics import attack_metrics
from memscan.attack.one_sided import one_sided_scores
from memscan.model.forward import teacher_forced
from memscan.model.interval import QUANTILES, Interval
from memscan.model.loading import LoadedModel


@dataclass(frozen=True)
class AttackOptions:
    reference_share: float = 0.5  # of the unseen set, held by the attacker as known non-members
    neighbours: int = 4  # perturbed copies per sequence for the calibrated MIAU (0: skip it)
    swap_share: float = 0.1  # share of positions swapped with their right neighbour
    min_k: float = 0.2  # Min-K% and Min-K%++ average the lowest k of the token scores
    seed: int = 0
    batch_size: int = 8


def split_unseen(n_unseen: int, options: AttackOptions) -> tuple[np.ndarray, np.ndarray]:
    """(reference, candidate) indices of the unseen set, a fixed-seed random split."""
    order = np.random.default_rng(options.seed).permutation(n_unseen)
    n_reference = int(round(n_unseen * options.reference_share))
    return np.sort(order[:n_reference]), np.sort(order[n_reference:])


def neighbours_of(sequence: np.ndarray, count: int, swap_share: float, rng: np.random.Generator) -> list[np.ndarray]:
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


@dataclass
class AttackResult:
    scores: pa.Table  # one row per candidate: id, member, every attack's score
    metrics: pa.Table  # one row per attack: auc, tpr at low FPRs
    outlier_rule: dict  # precision / recall of "g outside [lo, hi]" as a membership guess
    interval: Interval  # fitted on the attacker's reference sample


def run_attack(
    loaded: LoadedModel,
    forget: tuple[Sequence[str], Sequence[np.ndarray]],
    unseen: tuple[Sequence[str], Sequence[np.ndarray]],
    options: AttackOptions = AttackOptions(),
    progress=None,
) -> AttackResult:
    forget_ids, forget_seqs = forget
    unseen_ids, unseen_seqs = unseen
    reference, candidates = split_unseen(len(unseen_seqs), options)
    ids = list(forget_ids) + [unseen_ids[i] for i in candidates]
    member = np.array([True] * len(forget_seqs) + [False] * len(candidates))
    pool = [np.asarray(s, np.uint32) for s in forget_seqs] + [np.asarray(unseen_seqs[i], np.uint32) for i in candidates]
    reference_seqs = [np.asarray(unseen_seqs[i], np.uint32) for i in reference]

    everyone = pool + reference_seqs
    stats = teacher_forced(
        loaded, everyone, options.batch_size, progress("scoring", len(everyone)) if progress else None
    )
    all_g = np.array([s.memorization_accuracy for s in stats])
    all_loss = np.array([s.loss for s in stats])
    cut = len(pool)
    g, ref_g = all_g[:cut], all_g[cut:]

    texts = [loaded.tokenizer.decode([int(t) for t in s]) for s in pool]
    scores = {
        "miau": deviation(g, ref_g) + deviation(all_loss[:cut], all_loss[cut:]),
        "miau_g": deviation(g, ref_g),
        **one_sided_scores(stats[:cut], texts, options.min_k),
    }
    if options.neighbours:
        scores["miau_neighbour"] = _calibrated(loaded, everyone, all_g, all_loss, cut, options, progress)

    lo, hi = np.quantile(ref_g, QUANTILES)
    interval = Interval(float(lo), float(hi), float(ref_g.mean()), "reference quantiles", len(ref_g))
    flagged = (g < interval.lo) | (g > interval.hi)
    outlier_rule = {
        "flagged": int(flagged.sum()),
        "precision": float(member[flagged].mean()) if flagged.any() else None,
        "recall": float(flagged[member].mean()) if member.any() else None,
    }
    table = pa.table(
        {
            "id": pa.array(ids, pa.string()),
            "member": pa.array(member),
            "g": pa.array(g),
            **{k: pa.array(v) for k, v in scores.items()},
        }
    )
    return AttackResult(table, attack_metrics(member, scores), outlier_rule, interval)


def _calibrated(
    loaded, everyone: list[np.ndarray], g: np.ndarray, loss: np.ndarray, cut: int, options: AttackOptions, progress
) -> np.ndarray:
    """MIAU on (score - mean score of the sequence's neighbours), for g and the loss;
    everyone[:cut] are the candidates, the rest the attacker's reference."""
    rng = np.random.default_rng(options.seed + 1)
    copies = [c for s in everyone for c in neighbours_of(s, options.neighbours, options.swap_share, rng)]
    stats = teacher_forced(
        loaded, copies, options.batch_size, progress("neighbours", len(copies)) if progress else None
    )
    n_g = np.array([s.memorization_accuracy for s in stats]).reshape(len(everyone), options.neighbours).mean(1)
    n_loss = np.array([s.loss for s in stats]).reshape(len(everyone), options.neighbours).mean(1)
    calibrated_g, calibrated_loss = g - n_g, loss - n_loss
    return deviation(calibrated_g[:cut], calibrated_g[cut:]) + deviation(calibrated_loss[:cut], calibrated_loss[cut:])
