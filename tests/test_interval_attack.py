"""The interval, c(D_f), the paper's MIAU and memscan's z-score test."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from memscan.attack import AttackOptions, MiauOptions, Neighbourhood, run_attack
from memscan.attack.miau import mask_spans, resampled_neighbours
from memscan.attack.one_sided import one_sided_scores
from memscan.attack.zscore import deviation, split_unseen, swap_neighbours
from memscan.errors import UserError
from memscan.model.forward import TokenStats
from memscan.model.interval import Interval, fit_interval, forgetting_quality

unit = st.floats(0, 1, allow_nan=False)


@given(st.lists(unit, min_size=20, max_size=80))
def test_interval_is_the_unseen_quantiles_and_mean(g):
    interval = fit_interval(g)
    assert interval.lo == pytest.approx(np.quantile(g, 0.025)) and interval.hi == pytest.approx(np.quantile(g, 0.975))
    assert interval.mu_u == pytest.approx(np.mean(g)) and interval.n_unseen == len(g)


def test_too_few_unseen_sequences_are_refused():
    with pytest.raises(UserError, match="at least 20"):
        fit_interval([0.3] * 19)


def test_a_fixed_interval_keeps_the_unseen_mean():
    interval = fit_interval([0.2] * 10 + [0.4] * 10, fixed=(0.15, 0.6))
    assert (interval.lo, interval.hi, interval.source) == (0.15, 0.6, "fixed") and interval.mu_u == pytest.approx(0.3)


@given(st.lists(unit, min_size=1, max_size=50), unit, unit)
def test_forgetting_quality_counts_each_side(g, a, b):
    lo, hi = min(a, b), max(a, b)
    quality = forgetting_quality(g, Interval(lo, hi, (lo + hi) / 2, "fixed", 20))
    assert quality.above == sum(v > hi for v in g) and quality.below == sum(v < lo for v in g)
    assert quality.outside == quality.above + quality.below
    assert quality.mean == pytest.approx(np.mean(g)) and quality.std == pytest.approx(np.std(g))
    assert quality.average_success == (np.mean(g) < (lo + hi) / 2)


def test_deviation_is_two_sided():
    reference = np.array([0.2, 0.3, 0.4])
    low, high = deviation(np.array([0.1, 0.5]), reference)
    assert low == pytest.approx(high) and low > deviation(np.array([0.3]), reference)[0]


def test_one_sided_scores_by_hand():
    logprobs = np.log(np.array([0.5, 0.25, 0.125, 0.5, 0.5]))
    stats = TokenStats(np.zeros(5, bool), logprobs, np.array([1.0, -2.0, 0.5, 3.0, 0.0]), np.zeros(5))
    scores = one_sided_scores([stats], ["abc"], min_k=0.4)
    assert scores["loss"][0] == pytest.approx(logprobs.mean())
    assert scores["min_k"][0] == pytest.approx((np.log(0.125) + np.log(0.25)) / 2)
    assert scores["min_k_pp"][0] == pytest.approx(-1.0)


def test_neighbours_swap_adjacent_tokens():
    seq = np.arange(20, dtype=np.uint32)
    for copy in swap_neighbours(seq, 3, 0.1, np.random.default_rng(0)):
        assert sorted(copy.tolist()) == seq.tolist() and (copy != seq).sum() >= 2


def test_unseen_split_is_disjoint_and_seeded():
    ref, cand = split_unseen(30, 0.5, seed=3)
    assert len(set(ref) | set(cand)) == 30 and not set(ref) & set(cand)
    assert split_unseen(30, 0.5, seed=3)[0].tolist() == ref.tolist()


def test_every_attack_finds_the_memorized_sequences(memorized):
    model, sequences = memorized
    forget = ([f"f{i}" for i in range(6)], sequences[:6])
    unseen = ([f"u{i}" for i in range(24)], sequences[6:])
    result = run_attack(model, forget, unseen, AttackOptions(neighbours=6, swap_neighbours=2))
    rows = {r["attack"]: r for r in result.metrics.to_pylist()}
    assert set(rows) == {"miau", "zscore", "zscore_g", "zscore_swap", "loss", "zlib", "min_k", "min_k_pp"}
    assert rows["miau"]["auc"] > 0.9 and rows["zscore"]["auc"] > 0.9 and rows["loss"]["auc"] > 0.9
    assert rows["miau"]["candidates"] == "6 forget vs 6 unseen" and "resampled from tiny" in rows["miau"]["neighbours"]
    assert result.miau_scores.num_rows == 12 and 0 < rows["miau"]["pr_auc"] <= 1
    assert result.outlier_rule["recall"] == 1.0 and result.outlier_rule["precision"] > 0.5


def test_miau_scores_equal_a_plain_reference_on_fixed_neighbours(memorized):
    model, sequences = memorized
    neighbourhood = Neighbourhood.build(
        model, (["a", "b"], sequences[:2]), (["c", "d"], sequences[10:12]), MiauOptions(3)
    )
    got = neighbourhood.scores(model)
    for score, x, neighbours in zip(got, neighbourhood.candidates, neighbourhood.neighbours):
        ll = [mean_log_likelihood_loop(model, s) for s in (x, *neighbours)]
        assert score == pytest.approx(abs(ll[0] - np.mean(ll[1:])), abs=1e-5)


def mean_log_likelihood_loop(loaded, seq):
    """Mean log p(x_t | x_<t) over t = 2..T, one forward pass for the one sequence."""
    import torch

    with torch.no_grad():
        logits = loaded.model(input_ids=torch.as_tensor(seq.astype(np.int64)[None])).logits[0, :-1]
    logp = torch.log_softmax(logits.float(), -1)
    return float(logp[torch.arange(len(seq) - 1), torch.as_tensor(seq[1:].astype(np.int64))].mean())


def test_miau_is_chance_between_two_unseen_halves(memorized):
    """Neither half was trained on: over 6 seeds of 12 vs 12 candidates the mean AUC stays
    within 0.15 of 0.5 (one AUC of 12 vs 12 has a standard deviation near 0.12 under the
    null; the mean of 6 near 0.05, so 0.15 is three of those)."""
    model, sequences = memorized
    unseen = sequences[6:]
    aucs = []
    for seed in range(6):
        halves = np.random.default_rng(seed).permutation(24)
        a = ([f"a{i}" for i in halves[:12]], [unseen[i] for i in halves[:12]])
        b = ([f"b{i}" for i in halves[12:]], [unseen[i] for i in halves[12:]])
        result = run_attack(model, a, b, AttackOptions(neighbours=4, swap_neighbours=0, seed=seed))
        aucs.append(next(r["auc"] for r in result.metrics.to_pylist() if r["attack"] == "miau"))
    assert abs(np.mean(aucs) - 0.5) < 0.15, aucs


@given(st.integers(1, 300), st.floats(0.05, 1.0), st.integers(0, 1000))
def test_masks_follow_the_authors_rule(length, pct, seed):
    starts = mask_spans(length, pct, np.random.default_rng(seed))
    span = max(1, min(int(pct * length), 2))
    assert len(starts) <= int(pct * length / (span + 2))
    assert starts == sorted(starts) and all(0 <= s < length for s in starts)
    assert all(b - a >= span + 1 for a, b in zip(starts, starts[1:]))  # a free unit between spans


def test_neighbours_change_only_the_masked_spans(memorized):
    model, sequences = memorized
    options = MiauOptions(neighbours=5, seed=1)
    (copies,) = resampled_neighbours(model, [sequences[0]], 5, options)
    rng = np.random.default_rng(1)
    for copy in copies:
        starts = mask_spans(len(sequences[0]), options.mask_pct, rng)
        kept = np.ones(len(copy), bool)
        for s in starts:
            kept[s : s + 2] = False
        assert len(copy) == len(sequences[0]) and (copy[kept] == sequences[0][kept]).all()
