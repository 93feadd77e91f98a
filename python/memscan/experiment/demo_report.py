"""The Markdown report of `memscan demo`: what was run and what came out, as measured."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from memscan.tables import format_table

if TYPE_CHECKING:
    from memscan.experiment.demo import DemoResult

COLUMNS = [
    ("method", "method", "{}"),
    ("updates", "updates", "{}"),
    ("above", "above hi", "{}"),
    ("below", "below lo", "{}"),
    ("mean_g", "mean g", "{:.3f}"),
    ("std_g", "std g", "{:.3f}"),
    ("average_success", "mean < mu_u", "{}"),
    ("miau_auc", "MIAU AUC", "{:.2f}"),
    ("miau_pr_auc", "MIAU PR AUC", "{:.2f}"),
    ("zscore_auc", "z-score AUC", "{:.2f}"),
    ("loss_attack_auc", "LOSS AUC", "{:.2f}"),
    ("heldout_perplexity", "held-out ppl", "{:.2f}"),
    ("unlearn_seconds", "wall s", "{:.0f}"),
]


def _table(rows: list[dict]) -> str:
    cells = [[("-" if row.get(key) is None else fmt.format(row[key])) for key, _, fmt in COLUMNS] for row in rows]
    return format_table([header for _, header, _ in COLUMNS], cells, markdown=True)


def _findings(rows: list[dict], k: int) -> list[str]:
    implanted, methods = rows[0], rows[1:]
    out = [
        f"- Implanted model: {implanted['above']} of the forget set above the interval, {implanted[f'extractable_{k}']} "
        f"extractable verbatim from a {k}-token prompt; MIAU AUC {implanted['miau_auc']:.2f}."
    ]
    for r in methods:
        verdict = "Meets" if r["average_success"] else "Misses"
        out.append(
            f"- {r['method'].upper()}: {r['stopped']}. {verdict} the average-based target (mean g {r['mean_g']:.3f}); "
            f"per sequence {r['above']} still above and {r['below']} pushed below the interval; "
            f"{r[f'extractable_{k}']} still extractable; MIAU AUC {r['miau_auc']:.2f}; held-out perplexity {r['heldout_perplexity']:.2f}."
        )
    hidden = [r["method"].upper() for r in methods if r["average_success"] and r["outside"] > 0]
    if hidden:
        out.append(
            f"- Average-based success hides per-sequence failures in: {', '.join(hidden)} (mean below mu_u, yet sequences outside the interval)."
        )
    best = min(methods, key=lambda r: (r["outside"], abs(r["miau_auc"] - 0.5)))
    out.append(
        f"- Fewest sequences outside the interval (ties broken by MIAU AUC closest to 0.5): {best['method'].upper()} ({best['outside']} outside)."
    )
    return out


def demo_report(result: DemoResult) -> str:
    settings, rows, seconds = result.settings, result.rows, result.seconds
    repeats, interval = result.implanted.repeats, result.implanted.interval
    implanted_ma = result.forget_scores["implanted"].column("ma").to_numpy()
    by_level = {r: implanted_ma[np.asarray(repeats) == r].mean() for r in sorted(set(repeats))}
    spread = ", ".join(f"x{r}: {v:.2f}" for r, v in by_level.items())
    return "\n".join(
        [
            "# memscan demo: implant, measure and unlearn memorized passages",
            "",
            f"Model: {settings.model} (fp32, CPU unless CUDA is present). Data: King James Bible paragraphs, first "
            f"{settings.tokens} tokens each; {settings.forget_size} forget, {settings.unseen_size} unseen, "
            f"{settings.heldout_size} held-out, disjoint, drawn with seed {settings.seed}.",
            "",
            "## Implanting",
            f"Fine-tuned on the forget set with repeat counts {sorted(set(repeats))} (AdamW lr {settings.implant_lr}). "
            f"Mean MA of the forget set before: {np.mean(result.implanted.pretrained_ma):.3f}; after, by repeat count: {spread}.",
            "",
            "## The interval",
            f"From {interval.n_unseen} unseen passages on the implanted model: [{interval.lo:.3f}, {interval.hi:.3f}] "
            f"(2.5% / 97.5% quantiles), mu_u = {interval.mu_u:.3f}. g = memorization accuracy (MA).",
            "",
            "## Comparison",
            f"Each method starts from the implanted model with the authors' defaults (Adam lr 5e-5, betas (0.9, 0.98), one "
            f"full-batch update per epoch of micro-batches of 8, at most {settings.max_epochs} epochs; SGA gamma 0.7; TA "
            f"ascent to mean g 0.9, then lambda 3; TAU switch 0.5, lambda 1). MIAU (the paper's neighbourhood attack): "
            f"forget set vs as many unseen passages, {result.miau_generator}. z-score (memscan's two-sided test): forget "
            f"set vs half the unseen set, the other half held by the attacker as reference. AUC 0.5 means nothing leaks.",
            "",
            _table(rows),
            "",
            "## What happened",
            *_findings(rows, settings.k),
            "",
            "![per-sequence g](per_sequence.png)",
            "",
            "![g through the epochs](epochs.png)",
            "",
            "![MIAU ROC](miau_roc.png)",
            "",
            f"Finished in {seconds:.0f} s. Tables: `comparison.parquet` / `.csv`, `forget_scores.parquet` (per sequence and model), "
            "`epochs_<method>.parquet` (per sequence and epoch).",
            "",
        ]
    )
