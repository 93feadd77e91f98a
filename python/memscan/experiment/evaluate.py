"""Evaluating one model of an experiment: the forget set's per-sequence scores, c(D_f),
the attacks, and perplexity on held-out passages."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from memscan.attack import AttackOptions, AttackResult, MiauOptions, Neighbourhood, run_attack
from memscan.experiment.sets import PassageSets
from memscan.model.forward import perplexity
from memscan.model.interval import Interval, fit_interval, forgetting_quality
from memscan.model.loading import LoadedModel
from memscan.model.memorization import MemorizationOptions, memorization_table


@dataclass(frozen=True)
class EvaluationSettings:
    k: int = 32  # prompt length of the extraction test
    neighbours: int = 2  # the z-score test's swapped copies (zscore_swap)
    seed: int = 0
    miau_neighbours: int = 25  # the paper's MIAU: neighbours per candidate


@dataclass
class ModelEvaluation:
    row: dict  # one row of a comparison table (c(D_f), mean / std of g, AUCs, perplexity)
    forget_scores: pa.Table  # the forget set's memorization table
    attack: AttackResult


def neighbourhood_of(
    loaded: LoadedModel, sets: PassageSets, settings: EvaluationSettings, progress=None
) -> Neighbourhood:
    """MIAU's candidates and neighbours, resampled by `loaded` (the model before unlearning),
    made once and reused for every model of the experiment."""
    options = MiauOptions(neighbours=settings.miau_neighbours, seed=settings.seed)
    return Neighbourhood.build(loaded, sets.forget, sets.unseen, options, progress)


def evaluate_model(
    loaded: LoadedModel,
    sets: PassageSets,
    interval: Interval,
    settings: EvaluationSettings,
    name: str,
    neighbourhood: Neighbourhood,
    g: str = "ma",
) -> ModelEvaluation:
    """c(D_f) of g (a memorization-table column: `ma_dpd` scores the papers' DPD baseline,
    whose extraction test then samples the prompt's continuation as DPD does), every
    attack and held-out perplexity, as one results row."""
    dpd = g.endswith("_dpd")
    options = MemorizationOptions(n=0, k=settings.k, dpd_seed=settings.seed if dpd else None)
    table = memorization_table(loaded, *sets.forget, options)
    extractable = f"extractable_{settings.k}" + ("_dpd" if dpd else "")
    quality = forgetting_quality(table.column(g).to_numpy(), interval)
    attack_options = AttackOptions(swap_neighbours=settings.neighbours, seed=settings.seed)
    attack = run_attack(loaded, sets.forget, sets.unseen, attack_options, neighbourhood=neighbourhood)
    auc = {r["attack"]: r for r in attack.metrics.to_pylist()}
    row = {
        "method": name,
        "above": quality.above,
        "below": quality.below,
        "outside": quality.outside,
        "mean_g": quality.mean,
        "std_g": quality.std,
        "gap_to_mu_u": quality.gap_to_mu_u,
        "average_success": quality.average_success,
        f"extractable_{settings.k}": int(np.sum(table.column(extractable).to_numpy(zero_copy_only=False))),
        "miau_auc": auc["miau"]["auc"],
        "miau_pr_auc": auc["miau"]["pr_auc"],
        "miau_tpr_at_1pct_fpr": auc["miau"]["tpr_at_1pct_fpr"],
        "miau_tpr_at_10pct_fpr": auc["miau"]["tpr_at_10pct_fpr"],
        "zscore_auc": auc["zscore"]["auc"],
        "zscore_swap_auc": auc.get("zscore_swap", {}).get("auc"),
        "loss_attack_auc": auc["loss"]["auc"],
        "min_k_pp_auc": auc["min_k_pp"]["auc"],
        "heldout_perplexity": perplexity(loaded, sets.heldout[1]),
    }
    return ModelEvaluation(row, table, attack)


def unseen_interval(
    loaded: LoadedModel, sets: PassageSets, fixed: tuple[float, ...] | None = None, g: str = "ma"
) -> Interval:
    """The acceptable interval of g (MA by default) from the unseen passages (or `fixed`,
    with their mean as mu_u)."""
    unseen_g = memorization_table(loaded, *sets.unseen, MemorizationOptions(n=0, k=0)).column(g).to_numpy()
    return fit_interval(unseen_g, None if fixed is None else (fixed[0], fixed[1]))
