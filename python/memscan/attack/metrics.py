"""How well an attack tells members from non-members: ROC AUC, TPR at low FPR, ROC plots."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa

from memscan.plotting import plot_roc_curves

LOW_FPRS = (0.01, 0.10)


def attack_metrics(member: np.ndarray, scores: dict[str, np.ndarray]) -> pa.Table:
    """ROC AUC and TPR at 1% and 10% FPR of every attack (higher score = guessed member)."""
    from sklearn.metrics import roc_auc_score, roc_curve

    rows = []
    for name, values in scores.items():
        fpr, tpr, _ = roc_curve(member, values)
        row = {"attack": name, "auc": float(roc_auc_score(member, values))}
        for target in LOW_FPRS:
            row[f"tpr_at_{round(target * 100)}pct_fpr"] = (
                float(tpr[fpr <= target].max()) if (fpr <= target).any() else 0.0
            )
        rows.append(row)
    return pa.Table.from_pylist(rows)


def roc_inputs(scores: pa.Table, attack: str) -> tuple[np.ndarray, np.ndarray]:
    """(is member, score) of every candidate for one attack, as ROC curves take them."""
    return np.asarray(scores.column("member").to_pylist()), scores.column(attack).to_numpy()


def plot_roc(scores: pa.Table, metrics: pa.Table, path: Path, title: str) -> None:
    """ROC curves of every attack in `metrics` (PNG)."""
    curves = {
        f"{row['attack']} (AUC {row['auc']:.2f})": roc_inputs(scores, row["attack"]) for row in metrics.to_pylist()
    }
    plot_roc_curves(curves, path, title)
