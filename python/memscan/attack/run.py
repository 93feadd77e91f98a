"""Every attack on one model: the paper's MIAU (neighbourhood), memscan's z-score test, and
the one-sided attacks; ROC and PR AUC, TPR at low FPR, and the outlier rule."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from memscan.attack.metrics import attack_metrics, roc_inputs
from memscan.attack.miau import MiauOptions, Neighbourhood
from memscan.attack.one_sided import one_sided_scores
from memscan.attack.options import AttackOptions
from memscan.attack.zscore import split_unseen, swap_calibrated, zscore_scores
from memscan.model.forward import teacher_forced
from memscan.model.interval import QUANTILES, Interval
from memscan.model.loading import LoadedModel
from memscan.model.ranks import ONE, Ranks
from memscan.plotting import plot_roc_curves

Labelled = tuple[Sequence[str], Sequence[np.ndarray]]


@dataclass
class AttackResult:
    scores: pa.Table  # the z-score pool, one row per candidate: id, member, g, each attack's score
    metrics: pa.Table  # one row per attack: auc, pr_auc, tpr at low FPRs, candidates, neighbours
    outlier_rule: dict  # precision / recall of "g outside [lo, hi]" as a membership guess
    interval: Interval  # fitted on the attacker's reference sample
    miau_scores: pa.Table | None  # MIAU's candidates: id, member, miau

    def curve(self, attack: str) -> tuple[np.ndarray, np.ndarray]:
        """(is member, score) of the candidates of one attack, for its ROC curve."""
        table = self.miau_scores if attack == "miau" and self.miau_scores is not None else self.scores
        return roc_inputs(table, attack)


def plot_roc(result: AttackResult, path: Path, title: str) -> None:
    """ROC curves of every attack (PNG)."""
    rows = result.metrics.to_pylist()
    plot_roc_curves({f"{r['attack']} (AUC {r['auc']:.2f})": result.curve(r["attack"]) for r in rows}, path, title)


def run_attack(
    loaded: LoadedModel,
    forget: Labelled,
    unseen: Labelled,
    options: AttackOptions | None = None,
    progress=None,
    neighbourhood: Neighbourhood | None = None,
    ranks: Ranks = ONE,
) -> AttackResult:
    """`neighbourhood`: MIAU's candidates and neighbours, made once (by `Neighbourhood.build`)
    when several models are attacked; made here from `loaded` when None. `ranks` split
    the scoring passes by sequences; every rank returns the whole result."""
    options = options or AttackOptions()
    forget_ids, forget_seqs = forget
    unseen_ids, unseen_seqs = unseen
    reference, candidates = split_unseen(len(unseen_seqs), options.reference_share, options.seed)
    ids = list(forget_ids) + [unseen_ids[i] for i in candidates]
    member = np.array([True] * len(forget_seqs) + [False] * len(candidates))
    pool = [np.asarray(s, np.uint32) for s in forget_seqs] + [np.asarray(unseen_seqs[i], np.uint32) for i in candidates]
    everyone = pool + [np.asarray(unseen_seqs[i], np.uint32) for i in reference]
    bar = progress("scoring", len(everyone)) if progress else None
    stats = teacher_forced(loaded, everyone, options.batch_size, bar, ranks)
    cut = len(pool)
    texts = [loaded.tokenizer.decode([int(t) for t in s]) for s in pool]
    scores = {**zscore_scores(stats, cut), **one_sided_scores(stats[:cut], texts, options.min_k)}
    if options.swap_neighbours:
        scores["zscore_swap"] = swap_calibrated(loaded, everyone, stats, cut, options, progress, ranks)
    swapped = f"{options.swap_neighbours} copies with {options.swap_share:.0%} of adjacent tokens swapped"
    pool_rows = attack_metrics(member, scores).to_pylist()
    for row in pool_rows:
        row["candidates"] = f"{member.sum()} forget vs {(~member).sum()} unseen"
        row["neighbours"] = swapped if row["attack"] == "zscore_swap" else "-"

    miau_rows, miau_scores = [], None
    if options.neighbours:
        if neighbourhood is None:
            miau_options = MiauOptions(options.neighbours, options.mask_pct, options.seed, options.batch_size)
            neighbourhood = Neighbourhood.build(loaded, forget, unseen, miau_options, ranks=ranks)
        values = neighbourhood.scores(loaded, progress, ranks)
        miau_rows = attack_metrics(neighbourhood.member, {"miau": values}).to_pylist()
        miau_rows[0].update(
            candidates=f"{neighbourhood.member.sum()} forget vs {(~neighbourhood.member).sum()} unseen",
            neighbours=neighbourhood.generator,
        )
        miau_scores = pa.table({"id": neighbourhood.ids, "member": neighbourhood.member, "miau": values})

    g = np.array([s.memorization_accuracy for s in stats])
    ref_g = g[cut:]
    lo, hi = np.quantile(ref_g, QUANTILES)
    interval = Interval(float(lo), float(hi), float(ref_g.mean()), "reference quantiles", len(ref_g))
    flagged = (g[:cut] < interval.lo) | (g[:cut] > interval.hi)
    outlier_rule = {
        "flagged": int(flagged.sum()),
        "precision": float(member[flagged].mean()) if flagged.any() else None,
        "recall": float(flagged[member].mean()) if member.any() else None,
    }
    table = pa.table(
        {
            "id": pa.array(ids, pa.string()),
            "member": pa.array(member),
            "g": pa.array(g[:cut]),
            **{k: pa.array(v) for k, v in scores.items()},
        }
    )
    return AttackResult(table, pa.Table.from_pylist(miau_rows + pool_rows), outlier_rule, interval, miau_scores)
