"""What every PNG plot shares: matplotlib without a display, and ROC curves."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np


def pyplot():
    """matplotlib.pyplot on the Agg backend (no display needed), imported on first use."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_roc_curves(curves: Mapping[str, tuple[np.ndarray, np.ndarray]], path: Path, title: str) -> None:
    """One ROC curve per label from (is member, score) pairs, chance as the diagonal."""
    from sklearn.metrics import roc_curve

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5, 5))
    for label, (member, scores) in curves.items():
        fpr, tpr, _ = roc_curve(member, scores)
        ax.plot(fpr, tpr, label=label)
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", label="chance")
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title=title)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
