"""The sweep's PNG plots: privacy against utility, and per-sequence distributions."""

from __future__ import annotations

import numpy as np

from memscan.plotting import pyplot

METHOD_COLOURS = {
    "none": "tab:gray",
    "dpd": "tab:brown",
    "ga": "tab:red",
    "sga": "tab:orange",
    "ta": "tab:blue",
    "tau": "tab:purple",
}
MARKERS = "osD^v<>p*h"


def _error(s: dict, column: str) -> list[list[float]]:
    """Asymmetric error bar (the intervals are clipped to each quantity's range)."""
    if not np.isfinite(s[f"{column}_low"]):
        return [[0.0], [0.0]]
    return [[s[column] - s[f"{column}_low"]], [s[f"{column}_high"] - s[column]]]


def _ordered(values) -> list:
    """Numbers in numeric order, names in alphabetical order."""
    return sorted(values, key=lambda v: (isinstance(v, str), v))


def plot_privacy_utility(summary: list[dict], panel_by: str, path) -> None:
    """Mean c(D_f) share against mean utility (95% error bars over seeds): one panel per
    value of `panel_by` (model or forget_size), colours = methods, markers = the other axis."""
    plt = pyplot()
    other = "forget_size" if panel_by == "model" else "model"
    panels = _ordered({s[panel_by] for s in summary})
    marker_of = {v: MARKERS[i % len(MARKERS)] for i, v in enumerate(_ordered({s[other] for s in summary}))}
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 4.2), squeeze=False, sharey=True)
    for ax, panel in zip(axes[0], panels):
        for s in (s for s in summary if s[panel_by] == panel):
            ax.errorbar(
                s["utility_mean"],
                s["outside_share"],
                xerr=_error(s, "utility_mean"),
                yerr=_error(s, "outside_share"),
                marker=marker_of[s[other]],
                color=METHOD_COLOURS.get(s["method"], "black"),
                capsize=3,
                linestyle="none",
            )
        ax.set_title(f"{panel_by.replace('_', ' ')}: {panel}")
        ax.set_xlabel("utility (mean task accuracy/F1)")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("c(D_f) share (outside the interval)")
    handles = [
        plt.Line2D([], [], color=c, marker="o", linestyle="none", label=m)
        for m, c in METHOD_COLOURS.items()
        if any(s["method"] == m for s in summary)
    ]
    handles += [
        plt.Line2D([], [], color="black", marker=mk, linestyle="none", label=f"{other.replace('_', ' ')} {v}")
        for v, mk in marker_of.items()
    ]
    axes[0][-1].legend(handles=handles, fontsize=8, loc="best")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_distributions(records: list[dict], path) -> None:
    """Per-sequence g (MA) of the forget set after each method, pooled over seeds, one panel
    per (model, forget size); the band is the interval averaged over the seeds. DPD's cells
    (g = MA expected under private decoding, with an interval of its own) are left out."""
    plt = pyplot()
    groups: dict[tuple, dict[str, list[float]]] = {}
    intervals: dict[tuple, list[tuple[float, float]]] = {}
    for r in records:
        if r.get("g", "ma") != "ma":
            continue
        key = (r["cell"]["model"], r["cell"]["forget_size"])
        groups.setdefault(key, {}).setdefault(r["cell"]["method"], []).extend(r["forget_g"])
        intervals.setdefault(key, []).append((r["interval"]["lo"], r["interval"]["hi"]))
    keys = sorted(groups, key=lambda k: (k[0], k[1]))
    fig, axes = plt.subplots(1, len(keys), figsize=(4.5 * len(keys), 4), squeeze=False, sharey=True)
    for ax, key in zip(axes[0], keys):
        methods = [m for m in METHOD_COLOURS if m in groups[key]] + [m for m in groups[key] if m not in METHOD_COLOURS]
        lo, hi = np.mean(intervals[key], axis=0)
        ax.axhspan(lo, hi, color="tab:green", alpha=0.15)
        for x, method in enumerate(methods):
            values = np.asarray(groups[key][method])
            jitter = np.random.default_rng(x).uniform(-0.15, 0.15, values.size)
            ax.scatter(x + jitter, values, s=10, alpha=0.6, color=METHOD_COLOURS.get(method, "black"))
            ax.hlines(values.mean(), x - 0.3, x + 0.3, color="black")
        ax.set_xticks(range(len(methods)), methods)
        ax.set_title(f"{key[0]}, forget {key[1]}")
        ax.grid(alpha=0.3, axis="y")
    axes[0][0].set_ylabel("per-sequence g (MA)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
