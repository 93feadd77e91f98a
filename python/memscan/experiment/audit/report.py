"""The audit's report: `report.md`, its plots and `summary.json`, from the step files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from memscan import io
from memscan.model.interval import Interval, forgetting_quality
from memscan.plotting import pyplot
from memscan.tables import format_table

PREVIEW_CHARS = 80
TOP_REGIONS = 20


def write_report(out: Path, state: dict, interval: Interval | None) -> dict:
    """Write report.md, summary.json and the plots; returns the summary."""
    found = pq.read_table(out / "find.parquet", columns=["kind", "memorized", "longest_match"]).to_pandas()
    regions = pq.read_table(out / "regions.parquet").to_pandas()
    find_info = state["steps"]["find"]
    summary = _find_summary(found, regions, find_info)
    sections = [_find_section(state, summary, regions)]
    _plot_regions_per_document(regions, out / "regions_per_document.png")
    plots = ["regions_per_document.png"]
    after_path = out / "regions_after.parquet"
    if after_path.exists() and interval is not None:
        after = pq.read_table(after_path).to_pandas()
        verified = _verify_summary(out, after, interval, state)
        summary["verify"] = verified
        sections.append(_verify_section(verified, after, state))
        _plot_before_after(after, interval, out / "before_after.png")
        _plot_span_lengths(out, out / "span_lengths.png")
        plots += ["before_after.png", "span_lengths.png"]
    else:
        _plot_span_lengths(out, out / "span_lengths.png")
        plots.append("span_lengths.png")
    body = "\n\n".join([f"# memscan audit of {state['identity']['model']}", *sections])
    body += "\n\n" + "\n".join(f"![{p}]({p})" for p in plots) + "\n"
    io.commit({out / "report.md": io.text(body), out / "summary.json": io.text(json.dumps(summary, indent=2))})
    return summary


def _find_summary(found: pd.DataFrame, regions: pd.DataFrame, timing: dict) -> dict:
    prompted = found[found.kind == "prompt"]
    seconds = timing["generation_s"] + timing["matching_s"]
    return {
        "generations": int(len(found)),
        "memorized_generations": int(found.memorized.sum()),
        "memorized_share": float(found.memorized.mean()) if len(found) else 0.0,
        "prompted_generations": int(len(prompted)),
        "regions": int(len(regions)),
        "copies": int(regions.copies.sum()) if len(regions) else 0,
        "exact_regions": int(regions.exact_match.sum()) if len(regions) else 0,
        "generation_s": timing["generation_s"],
        "matching_s": timing["matching_s"],
        "matching_share": timing["matching_s"] / seconds if seconds else 0.0,
        "generations_per_s": len(found) / seconds if seconds else 0.0,
    }


def _find_section(state: dict, summary: dict, regions: pd.DataFrame) -> str:
    options = state["identity"]["options"]
    find = options["find"]
    lines = [
        "## Find",
        f"Index `{state['identity']['index']}`; {options['prompts']} corpus windows, each a {find['k']}-token "
        f"prompt and its {find['m']}-token continuation; greedy generation"
        + (f" and {find['samples']} samples (temperature {find['temperature']})" if find["samples"] else "")
        + (f", plus {find['free']} free generations" if find["free"] else "")
        + ". A generation is memorized when it reproduces its continuation exactly or approximately (edit "
        f"similarity >= 0.9 or BLEU-4 >= 0.75) or holds a corpus span of >= {find['min_span']} tokens.",
        "",
        f"- memorized generations: {summary['memorized_generations']} of {summary['generations']} "
        f"({summary['memorized_share']:.1%})",
        f"- memorized regions (the forget set): {summary['regions']}, of which {summary['exact_regions']} reproduced "
        f"exactly; {summary['copies']} further copies of them in other places of the corpus",
        f"- time: {summary['generation_s']:.1f} s generating, {summary['matching_s']:.2f} s matching "
        f"({summary['matching_share']:.1%} of the find); {summary['generations_per_s']:.2f} generations/s",
    ]
    if len(regions):
        rows = [
            [
                r.region,
                r.doc_id,
                r.n_tokens,
                r.copies,
                bool(r.exact_match),
                r.longest_match,
                r.prefix_length,
                _preview(r.text),
            ]
            for r in regions.head(TOP_REGIONS).itertuples()
        ]
        headers = ["region", "document", "tokens", "copies", "exact", "longest match", "prefix", "text"]
        lines += ["", f"Top {len(rows)} regions by memorization:", "", format_table(headers, rows, markdown=True)]
    return "\n".join(lines)


def _preview(text: str) -> str:
    flat = " ".join(text.split()).replace("|", "\\|")
    return flat if len(flat) <= PREVIEW_CHARS else flat[: PREVIEW_CHARS - 1] + "…"


def _verify_summary(out: Path, after: pd.DataFrame, interval: Interval, state: dict) -> dict:
    scores = {when: pq.read_table(out / f"scores_{when}.parquet").to_pandas() for when in ("before", "after")}
    quality = {
        when: forgetting_quality(table[table.set == "forget"].ma.to_numpy(), interval).to_dict()
        for when, table in scores.items()
    }
    verified = {
        "regions_remaining": int(after.remains.sum()),
        "regions": int(len(after)),
        "generations_before": int(after.generations_before.sum()),
        "generations_after": int(after.generations_after.sum()),
        "fresh_generations_in_regions": int(after.fresh_generations_after.sum()),
        "fresh_memorized_outside_regions": state["steps"]["verify"]["fresh_outside_regions"],
        "interval": interval.to_dict(),
        "c_df_before": quality["before"],
        "c_df_after": quality["after"],
        "forget_run": state["steps"]["forget"],
    }
    for when in ("before", "after"):
        attack = out / f"attack_{when}.csv"
        if attack.exists():
            verified[f"miau_auc_{when}"] = float(pd.read_csv(attack).auc.iloc[0])
        utility = out / f"utility_{when}.csv"
        if utility.exists():
            table = pd.read_csv(utility)
            verified[f"utility_{when}"] = {
                f"{r.task}_{r.metric}": float(r.value) for r in table[table.primary].itertuples()
            }
    return verified


def _verify_section(verified: dict, after: pd.DataFrame, state: dict) -> str:
    before_q, after_q = verified["c_df_before"], verified["c_df_after"]
    iv = verified["interval"]
    run = verified["forget_run"]
    method = state["identity"]["config"]["method"]
    lines = [
        "## Forget and verify",
        f"{method.upper()} on the {verified['regions']} regions: {run['reason']} after {run['updates']} updates "
        f"({run['seconds']:.0f} s). The unlearned model is `forget/model`.",
        "",
        format_table(
            ["", "before", "after"],
            [
                [
                    "memorized generations in the regions (same prompts)",
                    verified["generations_before"],
                    verified["generations_after"],
                ],
                [
                    "regions still reproduced (same or fresh prompts)",
                    verified["regions"],
                    verified["regions_remaining"],
                ],
                ["c(D_f): above the interval", before_q["above"], after_q["above"]],
                ["c(D_f): below the interval", before_q["below"], after_q["below"]],
                ["mean MA of the regions", before_q["mean"], after_q["mean"]],
                ["MIAU AUC", verified.get("miau_auc_before"), verified.get("miau_auc_after")],
                *[
                    [f"utility: {name}", value, verified.get("utility_after", {}).get(name)]
                    for name, value in verified.get("utility_before", {}).items()
                ],
            ],
            markdown=True,
        ),
        "",
        f"Interval of MA from the unseen windows: [{iv['lo']:.3f}, {iv['hi']:.3f}], mu_u {iv['mu_u']:.3f} "
        f"({iv['n_unseen']} windows whose prompts were never memorized: a proxy, since nobody can prove a "
        "sequence unseen by a pretrained model).",
        f"Fresh prompts: {verified['fresh_generations_in_regions']} memorized generations inside the forgotten "
        f"regions, {verified['fresh_memorized_outside_regions']} outside them (memorized text the first find "
        "did not reach; audit again with more prompts to add it).",
    ]
    remaining = after[after.remains]
    if len(remaining):
        rows = [
            [
                r.region,
                r.doc_id,
                r.generations_after,
                r.fresh_generations_after,
                r.longest_match_after,
                r.ma_after,
                _preview(r.matched_span_after),
            ]
            for r in remaining.head(TOP_REGIONS).itertuples()
        ]
        headers = ["region", "document", "generations", "fresh", "longest match", "MA", "span still matched"]
        lines += ["", "Regions still reproduced:", "", format_table(headers, rows, markdown=True)]
    return "\n".join(lines)


def _plot_regions_per_document(regions: pd.DataFrame, path: Path) -> None:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4))
    docs = [d for r in regions.itertuples() for d in [r.doc_id, *r.copy_doc_ids]]
    counts = pd.Series(docs, dtype=object).value_counts().head(TOP_REGIONS)
    ax.barh([str(d)[-40:] for d in counts.index[::-1]], counts.to_numpy()[::-1])
    ax.set(xlabel="memorized regions (with copies)", title="Memorized regions per document")
    ax.tick_params(axis="y", labelsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _plot_before_after(after: pd.DataFrame, interval: Interval, path: Path) -> None:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4))
    x = np.arange(len(after))
    ax.axhspan(interval.lo, interval.hi, color="green", alpha=0.15, label="interval (unseen)")
    ax.scatter(x, after.ma_before, marker="o", label="before", s=14)
    ax.scatter(x, after.ma_after, marker="x", label="after", s=14)
    for i, (b, a) in enumerate(zip(after.ma_before, after.ma_after)):
        ax.plot([i, i], [b, a], color="grey", linewidth=0.5)
    ax.set(xlabel="region (rank)", ylabel="MA", title="Each region before and after unlearning", ylim=(0, 1.02))
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _plot_span_lengths(out: Path, path: Path) -> None:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    for label, file in (("before", out / "find.parquet"), ("after", out / "verify-same")):
        if file.exists():
            lengths = pq.read_table(file, columns=["longest_match"]).column("longest_match").to_numpy()
            ax.hist(lengths, bins=np.arange(lengths.max(initial=0) + 2) - 0.5, alpha=0.6, label=label)
    ax.set(xlabel="longest corpus match in a generation (tokens)", ylabel="generations", yscale="log")
    ax.legend(fontsize=8)
    ax.set_title("Matched-span lengths")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
