"""The sweep's results: one table of cells, summaries over seeds with 95% intervals, the
best method of each (model, forget-set size) group, plots, and a Markdown report."""

from __future__ import annotations

import json
import subprocess
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow as pa

from memscan import io
from memscan.experiment.sweep.config import NONE, SweepConfig
from memscan.experiment.sweep.run import cell_path
from memscan.tables import format_table

# Summarised per (model, forget size, method): lower is better for the first, higher for utility.
SUMMARY_COLUMNS = (
    "outside_share",
    "above",
    "below",
    "outside_at_start",
    "still_outside",
    "pushed_out",
    "mean_g",
    "miau_auc",
    "miau_pr_auc",
    "miau_tpr_at_1pct_fpr",
    "zscore_auc",
    "utility_mean",
    "heldout_perplexity",
    "heldout_perplexity_ratio",
    "cell_seconds",
    "peak_rss_mib",
)

PER_SEQUENCE_COLUMNS = 16  # the report's per-sequence tables give each forget sequence a column


def collect(config: SweepConfig, out: Path) -> tuple[pa.Table, list[dict]]:
    """(results table, per-cell records) of every finished cell of the config's grid."""
    records = []
    for cell in config.cells():
        path = cell_path(out, *cell)
        if path.exists():
            records.append(json.loads(path.read_text()))
    starts = {_group(r): r for r in records if r["cell"]["method"] == NONE}
    rows = [r["cell"] | against_start(r, starts.get(_group(r))) for r in records]
    columns = list(dict.fromkeys(k for row in rows for k in row))  # cells of older code may lack newer columns
    return pa.Table.from_pylist([{k: row.get(k) for k in columns} for row in rows]), records


def _group(record: dict) -> tuple:
    cell = record["cell"]
    return cell["model"], cell["forget_size"], cell["seed"]


def against_start(record: dict, start: dict | None) -> dict:
    """A cell against its group's `none` cell `start` (the model before any method, scored with the
    plain g and its interval). c(D_f) split by where each sequence stood then:
    `outside_at_start` were outside, `still_outside` of them are outside now, and
    `pushed_out` were inside and are outside now. c(D_f) = still_outside + pushed_out;
    leaving out the members the model had already "forgotten" would count still_outside
    alone, which hides what a method does to them. `heldout_perplexity_ratio` is the
    cell's held-out perplexity over the start's. Without a start (the group ran no `none`
    cell) all four are None."""
    cell = record["cell"]
    if start is None:
        return dict.fromkeys(("outside_at_start", "still_outside", "pushed_out", "heldout_perplexity_ratio"))

    def outside(g: list[float], interval: dict) -> np.ndarray:
        values = np.asarray(g, dtype=np.float64)
        return (values < interval["lo"]) | (values > interval["hi"])

    was = outside(start["forget_g"], start["interval"])
    now = outside(record["forget_g"], record["interval"])
    return {
        "outside_at_start": int(was.sum()),
        "still_outside": int((was & now).sum()),
        "pushed_out": int((~was & now).sum()),
        "heldout_perplexity_ratio": cell["heldout_perplexity"] / start["cell"]["heldout_perplexity"],
    }


def mean_interval(values, bounds: tuple[float, float] = (-np.inf, np.inf)) -> tuple[float, float, float]:
    """Mean and Student-t 95% interval over seeds (nan bounds with one seed), clipped to
    the values the quantity can take."""
    from scipy.stats import t

    values = np.asarray([v for v in values if v is not None and np.isfinite(v)], dtype=np.float64)
    if values.size == 0:
        return (float("nan"),) * 3
    mean = float(values.mean())
    if values.size < 2:
        return mean, float("nan"), float("nan")
    half = float(t.ppf(0.975, values.size - 1) * values.std(ddof=1) / np.sqrt(values.size))
    return mean, max(mean - half, bounds[0]), min(mean + half, bounds[1])


def summarise(results: pa.Table) -> list[dict]:
    rows = results.to_pylist()
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r["model"], r["forget_size"], r["method"]), []).append(r)
    summary = []
    for (model, size, method), cells in groups.items():
        entry = {
            "model": model,
            "parameters": cells[0]["parameters"],
            "forget_size": size,
            "method": method,
            "seeds": len(cells),
        }
        for column in SUMMARY_COLUMNS + tuple(
            k for k in cells[0] if k.endswith(("_acc", "_f1", "_perplexity")) and k != "heldout_perplexity"
        ):
            entry[column], entry[f"{column}_low"], entry[f"{column}_high"] = seed_summary(
                column, [c.get(column) for c in cells], size
            )
        summary.append(entry)
    return summary


def seed_summary(column: str, values, forget_size: int) -> tuple[float, float, float]:
    """(centre, low, high) of one quantity over seeds, clipped to the values it can take
    (a count of forget-set sequences lies in [0, forget_size]). Perplexity spans orders of magnitude
    from seed to seed (58 to 3 000 after unlearning), so it is summarised on the log scale:
    the geometric mean and the exponentiated interval of log perplexity, which stays above 1
    (a ratio of perplexities: above 0) without clipping."""
    if column.endswith(("perplexity", "perplexity_ratio")):
        logs = [np.log(v) for v in values if v is not None and np.isfinite(v) and v > 0]
        centre, low, high = mean_interval(logs, (-np.inf if column.endswith("ratio") else 0.0, np.inf))
        return float(np.exp(centre)), float(np.exp(low)), float(np.exp(high))
    return mean_interval(values, _range(column, forget_size))


def _range(column: str, forget_size: int) -> tuple[float, float]:
    if column in ("above", "below", "outside_at_start", "still_outside", "pushed_out"):
        return (0.0, float(forget_size))
    if column in ("cell_seconds", "peak_rss_mib"):
        return (0.0, np.inf)
    return (0.0, 1.0)  # shares, AUCs, rates, accuracies, F1


def best_methods(summary: list[dict]) -> list[dict]:
    """Per (model, forget size): the unlearning method leaving the smallest share of the
    forget set outside the interval (c(D_f) / |D_f|), ties broken by utility; and whether
    its interval over seeds lies below the runner-up's and below which methods' it lies."""
    best = []
    for key in sorted({(s["model"], s["forget_size"]) for s in summary}, key=lambda k: (k[0], k[1])):
        ranked = sorted(
            (s for s in summary if (s["model"], s["forget_size"]) == key and s["method"] != NONE),
            key=lambda s: (s["outside_share"], -s["utility_mean"]),
        )
        if not ranked:
            continue
        top, runner = ranked[0], (ranked[1] if len(ranked) > 1 else None)
        beaten = [s["method"] for s in ranked[1:] if top["outside_share_high"] < s["outside_share_low"]]
        separated = runner is not None and runner["method"] in beaten
        best.append(
            {
                "model": key[0],
                "parameters": top["parameters"],
                "forget_size": key[1],
                "best": top["method"],
                "outside_share": top["outside_share"],
                "low": top["outside_share_low"],
                "high": top["outside_share_high"],
                "runner_up": runner["method"] if runner else None,
                "separated": separated,
                "beaten": beaten,
            }
        )
    return best


def commit_of_code() -> str:
    def git(*args) -> str:
        return subprocess.run(
            ["git", *args], capture_output=True, text=True, check=True, cwd=Path(__file__).parent
        ).stdout.strip()

    try:
        return git("rev-parse", "HEAD") + (
            " (with uncommitted changes)" if git("status", "--porcelain", "--untracked-files=no") else ""
        )
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not run from a git checkout)"


def short_commit(commit: str) -> str:
    """A `commit_of_code` reading with its hash cut to 12 characters (its note kept)."""
    head, _, note = commit.partition(" ")
    return head[:12] + (f" {note}" if note else "")


def _ran_on(records: list[dict]) -> str:
    """Which code the cells ran on: each commit, in grid order, with its number of cells."""
    counts = Counter(r.get("code_commit", "not recorded") for r in records)
    ran = ", ".join(f"`{short_commit(c)}` ({n} cell{'' if n == 1 else 's'})" for c, n in counts.items())
    return f"Cells ran on commit{'' if len(counts) == 1 else 's'} {ran}"


def write_report(config: SweepConfig, out: Path, commit: str) -> None:
    """`commit` is the code's, read before the sweep wrote anything: a sweep folder inside the
    checkout would otherwise mark its own report as written with uncommitted changes."""
    from memscan.experiment.sweep.plots import plot_distributions, plot_privacy_utility

    results, records = collect(config, out)
    if results.num_rows == 0:
        return
    io.write_parquet(results, out / "results.parquet")
    io.write_text(results.to_pandas().to_csv(index=False), out / "results.csv")
    summary = summarise(results)
    io.write_text(pa.Table.from_pylist(summary).to_pandas().to_csv(index=False), out / "summary.csv")
    plot_privacy_utility(summary, "model", out / "privacy_utility_by_model.png")
    plot_privacy_utility(summary, "forget_size", out / "privacy_utility_by_forget_size.png")
    plot_distributions(records, out / "per_sequence.png")
    io.write_text(
        report_markdown(config, results, records, summary, best_methods(summary), len(config.cells()), commit),
        out / "report.md",
    )


def _count(s: dict, column: str) -> str:
    return f"{s[column]:.1f}" if np.isfinite(s[column]) else "-"


def _ci(s: dict, column: str, fmt: str = "{:.2f}") -> str:
    value, low, high = s[column], s[f"{column}_low"], s[f"{column}_high"]
    if not np.isfinite(value):
        return "-"
    if not np.isfinite(low):
        return fmt.format(value)
    return f"{fmt.format(value)} [{fmt.format(low)}, {fmt.format(high)}]"


def report_markdown(
    config: SweepConfig,
    results: pa.Table,
    records: list[dict],
    summary: list[dict],
    best: list[dict],
    cells_total: int,
    commit: str,
) -> str:

    lines = [
        "# memscan sweep",
        "",
        f"Cells finished: {results.num_rows} of {cells_total}. {_ran_on(records)}; "
        f"this report was written on `{short_commit(commit)}`.",
        "",
        f"Grid: models {', '.join(config.models)}; forget-set sizes {', '.join(map(str, config.forget_sizes))}; "
        f"seeds {', '.join(map(str, config.seeds))}; methods {', '.join(config.methods)}.",
        _setting(config) + f", and runs each method for at most "
        f"{config.max_epochs} epochs with the authors' defaults (docs/definitions.md). Utility: {', '.join(config.tasks)} "
        f"({'all items' if config.task_limit is None else f'{config.task_limit} items per task, seeded'}).",
        "",
        f"Attacks: MIAU is the paper's neighbourhood attack (forget set vs as many unseen passages; "
        f"{config.miau_neighbours} neighbours per candidate, masked 2-token spans resampled by the "
        f"{'implanted' if config.implant else 'pretrained'} model before unlearning); z-score is memscan's two-sided test (forget set vs half the unseen set).",
        "",
        "Figures are means over seeds with Student-t 95% intervals; perplexities are geometric means with the "
        "interval taken on log perplexity. c(D_f) share = sequences outside the interval / forget-set size "
        "(lower is better); utility = mean of the tasks' accuracies/F1 (higher is better). "
        "The headline is c(D_f) over the whole forget set, as the paper counts it. Split by where each sequence "
        'stood before unlearning (the group\'s `none` cell): "outside at start" were outside the interval then, '
        '"still outside" of them are outside now, "pushed out" were inside then (already "forgotten") and '
        'are outside now; c(D_f) without the already-forgotten members would be "still outside" alone, which '
        "hides what a method does to them.",
        "",
        "## Headline",
        "",
        "Per model, forget-set size and method, over seeds: c(D_f) above and below the interval, the paper's "
        "MIAU AUC, held-out perplexity against the pretrained model's, and the task mean.",
        "",
        _headline_table(config, summary),
        "",
        "## Best method per model and forget-set size",
        "",
        "Best = the unlearning method with the smallest mean c(D_f) share, ties broken by utility. "
        '"separated" = its interval lies below the runner-up\'s; "clearly ahead of" = the methods whose intervals it lies below.',
        "",
        format_table(
            [
                "model",
                "parameters",
                "forget size",
                "best",
                "c(D_f) share [95% CI]",
                "runner-up",
                "separated",
                "clearly ahead of",
            ],
            [
                [
                    b["model"],
                    f"{b['parameters'] / 1e6:.0f} M",
                    b["forget_size"],
                    b["best"],
                    _ci(b | {"outside_share_low": b["low"], "outside_share_high": b["high"]}, "outside_share"),
                    b["runner_up"] or "-",
                    "yes" if b["separated"] else "no",
                    ", ".join(b["beaten"]) or "-",
                ]
                for b in best
            ],
            markdown=True,
        ),
        "",
    ]
    for model, size in sorted({(s["model"], s["forget_size"]) for s in summary}):
        group = sorted(
            (s for s in summary if (s["model"], s["forget_size"]) == (model, size)),
            key=_method_order(config),
        )
        lines += [
            f"## {model}, forget set of {size}",
            "",
            format_table(
                [
                    "method",
                    "seeds",
                    "c(D_f) share",
                    "above",
                    "below",
                    "outside at start",
                    "still outside",
                    "pushed out",
                    "mean g",
                    "MIAU AUC",
                    "MIAU PR AUC",
                    "TPR@1%FPR",
                    "z-score AUC",
                    "utility",
                    "held-out ppl",
                    "ppl ratio",
                    "cell s",
                    "peak RSS GiB",
                ],
                [
                    [
                        s["method"],
                        s["seeds"],
                        _ci(s, "outside_share"),
                        f"{s['above']:.1f}",
                        f"{s['below']:.1f}",
                        *(_count(s, c) for c in ("outside_at_start", "still_outside", "pushed_out")),
                        f"{s['mean_g']:.3f}",
                        _ci(s, "miau_auc"),
                        _ci(s, "miau_pr_auc"),
                        f"{s['miau_tpr_at_1pct_fpr']:.2f}",
                        _ci(s, "zscore_auc"),
                        _ci(s, "utility_mean", "{:.3f}"),
                        _ci(s, "heldout_perplexity", "{:.0f}"),
                        _ci(s, "heldout_perplexity_ratio", "{:.3f}"),
                        f"{s['cell_seconds']:.0f}",
                        f"{s['peak_rss_mib'] / 1024:.1f}" if np.isfinite(s["peak_rss_mib"]) else "-",
                    ]
                    for s in group
                ],
                markdown=True,
            ),
            "",
        ]
        task_columns = [k for k in group[0] if k.endswith(("_acc", "_f1", "_perplexity")) and k != "heldout_perplexity"]
        if task_columns:
            lines += [
                "Utility per task (over seeds [95% CI]):",
                "",
                format_table(
                    ["method", *task_columns],
                    [
                        [
                            s["method"],
                            *(_ci(s, c, "{:.3f}" if not c.endswith("_perplexity") else "{:.1f}") for c in task_columns),
                        ]
                        for s in group
                    ],
                    markdown=True,
                ),
                "",
            ]
    lines += _per_sequence_section(config, records)
    lines += [
        "## Plots",
        "",
        "- `privacy_utility_by_model.png`: c(D_f) share against utility, one panel per model.",
        "- `privacy_utility_by_forget_size.png`: the same, one panel per forget-set size.",
        "- `per_sequence.png`: per-sequence g (MA) of the forget set after each method, with the interval.",
        "",
    ]
    return "\n".join(lines)


def _per_sequence_section(config: SweepConfig, records: list[dict]) -> list[str]:
    """Every group's forget set sequence by sequence: each method's g per sequence, marked
    when above or below the interval it is judged against (forget sets of at most
    PER_SEQUENCE_COLUMNS sequences: a column each)."""
    lines = [
        "## Per sequence",
        "",
        "Each forget-set sequence's g after each method (in the order of the forget file), "
        "^ above the interval and v below it; DPD is judged against the interval of unseen text "
        f"under the same decoding. Forget sets of more than {PER_SEQUENCE_COLUMNS} sequences are left out "
        "here: their values are each cell's `forget_g` in `cells/` and in `per_sequence.png`.",
        "",
    ]
    groups: dict[tuple, list[dict]] = {}
    for record in records:
        if record["cell"]["forget_size"] <= PER_SEQUENCE_COLUMNS:
            groups.setdefault(_group(record), []).append(record)
    by_method = _method_order(config)
    for (model, size, seed), cells in groups.items():
        cells = sorted(cells, key=lambda r: by_method(r["cell"]))
        lines += [
            f"### {model}, forget set of {size}, seed {seed}",
            "",
            format_table(
                ["method", "g", "interval", "above / below", *(f"#{i + 1}" for i in range(size))],
                [
                    [
                        r["cell"]["method"],
                        r["g"],
                        f"[{r['interval']['lo']:.3f}, {r['interval']['hi']:.3f}]",
                        f"{r['cell']['above']} / {r['cell']['below']}",
                        *(_marked(g, r["interval"]) for g in r["forget_g"]),
                    ]
                    for r in cells
                ],
                markdown=True,
            ),
            "",
        ]
    return lines


def _marked(g: float, interval: dict) -> str:
    return f"{g:.2f}" + ("^" if g > interval["hi"] else "v" if g < interval["lo"] else "")


def _method_order(config: SweepConfig):
    """A sort key putting summary rows in the config's order of methods (unknown ones last)."""
    order = {method: i for i, method in enumerate(config.methods)}
    return lambda s: order.get(s["method"], len(order))


def _headline_table(config: SweepConfig, summary: list[dict]) -> str:
    by_method = _method_order(config)
    rows = sorted(summary, key=lambda s: (s["parameters"], s["forget_size"], by_method(s)))
    return format_table(
        [
            "model",
            "forget size",
            "method",
            "seeds",
            "c(D_f) above",
            "c(D_f) below",
            "MIAU AUC",
            "ppl ratio",
            "task mean",
        ],
        [
            [
                s["model"],
                s["forget_size"],
                s["method"],
                s["seeds"],
                _ci(s, "above", "{:.1f}"),
                _ci(s, "below", "{:.1f}"),
                _ci(s, "miau_auc"),
                _ci(s, "heldout_perplexity_ratio", "{:.3f}"),
                _ci(s, "utility_mean", "{:.3f}"),
            ]
            for s in rows
        ],
        markdown=True,
    )


def _setting(config) -> str:
    """How each group's forget and unseen sets came to be."""
    if not config.implant:
        return (
            f"Nothing is implanted: each group's forget set is `{config.forget_files}` for its size and seed (what the "
            f"model memorized in pretraining, if anything), unseen and held-out sequences are seeded draws from "
            f"`{config.unseen_file}`, all cut to {config.tokens} tokens; the interval is learned from "
            f"{config.unseen_size} unseen sequences on the pretrained model"
        )
    rates = ", ".join(f"{m} {config.implant_lr_for(m):g}" for m in config.models)
    return (
        f"Each group implants {config.tokens}-token KJV passages (repeats 1/2/4/8) into the pretrained model (AdamW, lr "
        f"{rates}), learns the interval from {config.unseen_size} unseen passages on the implanted model"
    )
