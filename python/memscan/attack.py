"""MIAU: membership inference against unlearning (DESIGN.md section 3).

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

import zlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from memscan.forward import TokenStats, teacher_forced
from memscan.interval import QUANTILES, Interval
from memscan.models import LoadedModel

LOW_FPRS = (0.01, 0.10)


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

    stats = teacher_forced(loaded, pool + reference_seqs, options.batch_size, progress("scoring", len(pool) + len(reference_seqs)) if progress else None)
    pool_stats, reference_stats = stats[: len(pool)], stats[len(pool) :]
    g = np.array([s.memorization_accuracy for s in pool_stats])
    loss = np.array([s.loss for s in pool_stats])
    ref_g = np.array([s.memorization_accuracy for s in reference_stats])
    ref_loss = np.array([s.loss for s in reference_stats])

    texts = [loaded.tokenizer.decode([int(t) for t in s]) for s in pool]
    scores = {
        "miau": deviation(g, ref_g) + deviation(loss, ref_loss),
        "miau_g": deviation(g, ref_g),
        **one_sided_scores(pool_stats, texts, options.min_k),
    }
    if options.neighbours:
        scores["miau_neighbour"] = _calibrated(loaded, pool, reference_seqs, g, loss, ref_g, ref_loss, options, progress)

    lo, hi = np.quantile(ref_g, QUANTILES)
    interval = Interval(float(lo), float(hi), float(ref_g.mean()), "reference quantiles", len(ref_g))
    flagged = (g < interval.lo) | (g > interval.hi)
    outlier_rule = {
        "flagged": int(flagged.sum()),
        "precision": float(member[flagged].mean()) if flagged.any() else None,
        "recall": float(flagged[member].mean()) if member.any() else None,
    }
    table = pa.table({"id": pa.array(ids, pa.string()), "member": pa.array(member), "g": pa.array(g), **{k: pa.array(v) for k, v in scores.items()}})
    return AttackResult(table, attack_metrics(member, scores), outlier_rule, interval)


def _calibrated(loaded, pool, reference_seqs, g, loss, ref_g, ref_loss, options: AttackOptions, progress) -> np.ndarray:
    """MIAU on (score - mean score of the sequence's neighbours), for g and the loss."""
    rng = np.random.default_rng(options.seed + 1)
    everyone = pool + reference_seqs
    copies = [c for s in everyone for c in neighbours_of(s, options.neighbours, options.swap_share, rng)]
    stats = teacher_forced(loaded, copies, options.batch_size, progress("neighbours", len(copies)) if progress else None)
    n_g = np.array([s.memorization_accuracy for s in stats]).reshape(len(everyone), options.neighbours).mean(1)
    n_loss = np.array([s.loss for s in stats]).reshape(len(everyone), options.neighbours).mean(1)
    all_g, all_loss = np.concatenate([g, ref_g]) - n_g, np.concatenate([loss, ref_loss]) - n_loss
    cut = len(pool)
    return deviation(all_g[:cut], all_g[cut:]) + deviation(all_loss[:cut], all_loss[cut:])


def attack_metrics(member: np.ndarray, scores: dict[str, np.ndarray]) -> pa.Table:
    """ROC AUC and TPR at 1% and 10% FPR of every attack (higher score = guessed member)."""
    from sklearn.metrics import roc_auc_score, roc_curve

    rows = []
    for name, values in scores.items():
        fpr, tpr, _ = roc_curve(member, values)
        row = {"attack": name, "auc": float(roc_auc_score(member, values))}
        for target in LOW_FPRS:
            row[f"tpr_at_{round(target * 100)}pct_fpr"] = float(tpr[fpr <= target].max()) if (fpr <= target).any() else 0.0
        rows.append(row)
    return pa.Table.from_pylist(rows)


def plot_roc(result: AttackResult, path, title: str) -> None:
    """ROC curves of every attack, chance as the diagonal (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import roc_curve

    member = np.asarray(result.scores.column("member").to_pylist())
    fig, ax = plt.subplots(figsize=(5, 5))
    for row in result.metrics.to_pylist():
        fpr, tpr, _ = roc_curve(member, result.scores.column(row["attack"]).to_numpy())
        ax.plot(fpr, tpr, label=f"{row['attack']} (AUC {row['auc']:.2f})")
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", label="chance")
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title=title)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
