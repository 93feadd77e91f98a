"""How well an attack tells members from non-members: ROC AUC, PR AUC, TPR at low FPR."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

LOW_FPRS = (0.01, 0.10)


def attack_metrics(member: np.ndarray, scores: dict[str, np.ndarray]) -> pa.Table:
    """ROC AUC, PR AUC (average precision) and TPR at 1% and 10% FPR of every attack
    (higher score = guessed member)."""
    from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve

    rows = []
    for name, values in scores.items():
        fpr, tpr, _ = roc_curve(member, values)
        row = {
            "attack": name,
            "auc": float(roc_auc_score(member, values)),
            "pr_auc": float(average_precision_score(member, values)),
        }
        for target in LOW_FPRS:
            row[f"tpr_at_{round(target * 100)}pct_fpr"] = (
                float(tpr[fpr <= target].max()) if (fpr <= target).any() else 0.0
            )
        rows.append(row)
    return pa.Table.from_pylist(rows)


def roc_inputs(scores: pa.Table, attack: str) -> tuple[np.ndarray, np.ndarray]:
    """(is member, score) of every candidate for one attack, as ROC curves take them."""
    return np.asarray(scores.column("member").to_pylist()), scores.column(attack).to_numpy()
