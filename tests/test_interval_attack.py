"""The interval, c(D_f), and the MIAU attack."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from memscan.attack.miau import AttackOptions, deviation, neighbours_of, run_attack, split_unseen
from memscan.attack.one_sided import one_sided_scores
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
    stats = TokenStats(np.zeros(5, bool), logprobs, np.array([1.0, -2.0, 0.5, 3.0, 0.0]))
    scores = one_sided_scores([stats], ["abc"], min_k=0.4)
    assert scores["loss"][0] == pytest.approx(logprobs.mean())
    assert scores["min_k"][0] == pytest.approx((np.log(0.125) + np.log(0.25)) / 2)
    assert scores["min_k_pp"][0] == pytest.approx(-1.0)


def test_neighbours_swap_adjacent_tokens():
    seq = np.arange(20, dtype=np.uint32)
    for copy in neighbours_of(seq, 3, 0.1, np.random.default_rng(0)):
        assert sorted(copy.tolist()) == seq.tolist() and (copy != seq).sum() >= 2


def test_unseen_split_is_disjoint_and_seeded():
    ref, cand = split_unseen(30, AttackOptions(seed=3))
    assert len(set(ref) | set(cand)) == 30 and not set(ref) & set(cand)
    assert split_unseen(30, AttackOptions(seed=3))[0].tolist() == ref.tolist()


def test_miau_finds_memorized_sequences(memorized):
    model, sequences = memorized
    forget = ([f"f{i}" for i in range(6)], sequences[:6])
    unseen = ([f"u{i}" for i in range(24)], sequences[6:])
    result = run_attack(model, forget, unseen, AttackOptions(neighbours=2))
    auc = {r["attack"]: r["auc"] for r in result.metrics.to_pylist()}
    assert auc["miau"] > 0.9 and auc["loss"] > 0.9
    assert set(auc) == {"miau", "miau_g", "loss", "zlib", "min_k", "min_k_pp", "miau_neighbour"}
    assert result.outlier_rule["recall"] == 1.0 and result.outlier_rule["precision"] > 0.5
