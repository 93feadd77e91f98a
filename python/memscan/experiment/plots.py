"""PNG plots of per-sequence memorization, with the acceptable interval shaded."""

from __future__ import annotations

import numpy as np

from memscan.model.interval import Interval
from memscan.plotting import plot_roc_curves, pyplot


def _shade(ax, interval: Interval) -> None:
    ax.axhspan(
        interval.lo,
        interval.hi,
        color="tab:green",
        alpha=0.15,
        label=f"interval [{interval.lo:.2f}, {interval.hi:.2f}]",
    )
    ax.axhline(interval.mu_u, color="tab:green", linestyle="--", linewidth=1, label=f"mu_u {interval.mu_u:.2f}")


def plot_per_sequence(g_by_model: dict[str, np.ndarray], repeats, interval: Interval, path) -> None:
    """Every forget sequence's g under each model, coloured by how often it was implanted."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(1.6 * len(g_by_model) + 2, 4.5))
    _shade(ax, interval)
    levels = sorted(set(repeats))
    colours = plt.cm.viridis(np.linspace(0, 0.9, len(levels)))
    rng = np.random.default_rng(0)
    for x, g in enumerate(g_by_model.values()):
        jitter = rng.uniform(-0.18, 0.18, size=len(g))
        for level, colour in zip(levels, colours):
            chosen = np.asarray(repeats) == level
            ax.scatter(
                x + jitter[chosen], g[chosen], color=colour, s=18, label=f"implanted x{level}" if x == 0 else None
            )
    ax.set_xticks(range(len(g_by_model)), list(g_by_model))
    ax.set(
        ylabel="g = memorization accuracy",
        title="Forget set, per sequence: before and after unlearning",
        ylim=(-0.02, 1.02),
    )
    ax.legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_epochs(epochs: dict, interval: Interval, path) -> None:
    """Per-sequence g through the epochs of each method (one thin line per sequence)."""
    plt = pyplot()
    fig, axes = plt.subplots(1, len(epochs), figsize=(3.2 * len(epochs), 3.6), sharey=True, squeeze=False)
    for ax, (method, table) in zip(axes[0], epochs.items()):
        frame = table.to_pandas()
        _shade(ax, interval)
        for _, rows in frame.groupby("id"):
            ax.plot(rows["epoch"], rows["g"], color="tab:blue", alpha=0.35, linewidth=0.8)
        ax.plot(frame.groupby("epoch")["g"].mean(), color="black", linewidth=2, label="mean")
        ax.set(title=method, xlabel="epoch")
    axes[0][0].set_ylabel("g")
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_rocs(attacks: dict, path, attack: str = "miau") -> None:
    """One attack's ROC curve against each model."""
    curves = {}
    for name, result in attacks.items():
        auc = next(r["auc"] for r in result.metrics.to_pylist() if r["attack"] == attack)
        curves[f"{name} (AUC {auc:.2f})"] = result.curve(attack)
    plot_roc_curves(curves, path, f"{attack.upper()}: which candidates were unlearned?")
