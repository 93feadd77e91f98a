"""Pair scores and EL_n: the Rust core against the plain-Python reference."""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import reference as ref
from memscan.errors import UserError
from memscan.scan import scores
from strategies import any_sequence, sequence, token

pairs = st.lists(st.tuples(any_sequence, any_sequence), min_size=1, max_size=6)


@given(pairs)
def test_pair_scores_equal_reference(batch):
    gens, refs = [a for a, _ in batch], [b for _, b in batch]
    got = scores.pair_scores(gens, refs)
    for i, (a, b) in enumerate(batch):
        assert got.exact_match[i] == (a == b)
        assert got.prefix_length[i] == ref.prefix_length(a, b)
        assert got.positional_match[i] == pytest.approx(ref.positional_match(a, b))
        assert got.edit_similarity[i] == pytest.approx(ref.edit_similarity(a, b))
        assert got.bleu4[i] == pytest.approx(ref.bleu4(a, b), rel=1e-12, abs=1e-15)
        f1, recall = ref.rouge_l(a, b)
        assert got.rouge_l_f1[i] == pytest.approx(f1)
        assert got.rouge_l_recall[i] == pytest.approx(recall)
        assert got.approximate_match[i] == (ref.edit_similarity(a, b) >= 0.9 or ref.bleu4(a, b) >= 0.75)


@given(st.lists(st.tuples(sequence, sequence), min_size=1, max_size=6), st.integers(1, 5))
def test_ngram_overlap_equals_reference(batch, n):
    batch = [(a, b) for a, b in batch if len(a) >= n] or [([1] * n, [1] * n)]
    got = scores.ngram_overlap([a for a, _ in batch], [b for _, b in batch], n)
    assert got.tolist() == pytest.approx([ref.overlap(a, b, n) for a, b in batch])


@given(st.lists(token, min_size=4, max_size=30), st.integers(1, 3), st.data())
def test_extraction_likelihood_equals_reference(x, n, data):
    x = x if len(x) > n else x + [1] * (n + 1 - len(x))
    T = len(x)
    gens = {p: data.draw(st.lists(token, min_size=T - p, max_size=T - p)) for p in range(1, T - n + 1)}
    got = scores.extraction_likelihood([x], list(gens.values()), [0] * len(gens), list(gens), n)
    assert got[0] == pytest.approx(ref.extraction_likelihood(x, gens, n))


@given(st.lists(token, min_size=4, max_size=40), st.integers(1, 4), st.data())
def test_extraction_likelihood_equals_reference_on_continuations_that_follow_the_text(x, n, data):
    """Continuations that copy the true suffix up to a few changed tokens (the case a
    memorized sequence produces, and the one the core counts without lookups)."""
    x = x if len(x) > n else x + [1] * (n + 1 - len(x))
    T = len(x)
    gens = {}
    for p in range(1, T - n + 1):
        gen = list(x[p:])
        for i in data.draw(st.lists(st.integers(0, T - p - 1), max_size=3)):
            gen[i] = data.draw(token)
        gens[p] = gen
    got = scores.extraction_likelihood([x], list(gens.values()), [0] * len(gens), list(gens), n)
    assert got[0] == pytest.approx(ref.extraction_likelihood(x, gens, n))


def test_extraction_likelihood_of_perfect_recall_is_one():
    x = list(range(20))
    gens = [x[p:] for p in range(1, 20 - 10 + 1)]
    assert scores.extraction_likelihood([x], gens, [0] * 10, range(1, 11), 10)[0] == 1.0


def test_extraction_likelihood_rejects_wrong_lengths_and_short_sequences():
    with pytest.raises(UserError, match="should hold 4 tokens"):
        scores.extraction_likelihood([[1, 2, 3, 4, 5]], [[1, 2]], [0], [1], 2)
    with pytest.raises(UserError, match="prefixes run from 1 to T-n"):  # never the empty prefix
        scores.extraction_likelihood([[1, 2, 3, 4, 5]], [[1, 2, 3, 4, 5]], [0], [0], 2)
    with pytest.raises(UserError, match="prefixes run from 1 to T-n"):
        scores.extraction_likelihood([[1, 2, 3, 4, 5]], [[5]], [0], [4], 2)
    with pytest.raises(UserError, match="needs more than 10"):
        scores.extraction_likelihood([[1, 2, 3]], [], [], [], 10)
    with pytest.raises(UserError, match="does not exist"):
        scores.extraction_likelihood([[1, 2, 3, 4]], [[1, 2, 3, 4]], [3], [0], 2)


def test_overlap_refuses_sequences_shorter_than_n():
    with pytest.raises(UserError, match="no 3-gram"):
        scores.ngram_overlap([[1, 2]], [[1, 2, 3]], 3)
    with pytest.raises(UserError, match="at least 1"):
        scores.ngram_overlap([[1, 2]], [[1, 2, 3]], 0)


def test_edges_by_hand():
    got = scores.pair_scores([[], [], [7]], [[], [7], []])
    assert got.exact_match.tolist() == [True, False, False]
    assert got.edit_similarity.tolist() == [1.0, 0.0, 0.0]
    assert got.bleu4.tolist() == [1.0, 0.0, 0.0]
    assert got.rouge_l_f1.tolist() == [1.0, 0.0, 0.0]


def test_bleu_hand_value():
    # 4 tokens, exact: every precision 1 (add-one keeps 1), no brevity penalty.
    assert scores.pair_scores([[1, 2, 3, 4]], [[1, 2, 3, 4]]).bleu4[0] == 1.0
    # unigram 3/4; bigrams 1 of 3 -> 2/4; trigrams 0 of 2 -> 1/3; 4-grams 0 of 1 -> 1/2
    expected = math.exp((math.log(3 / 4) + math.log(2 / 4) + math.log(1 / 3) + math.log(1 / 2)) / 4)
    assert scores.pair_scores([[1, 2, 9, 4]], [[1, 2, 3, 4]]).bleu4[0] == pytest.approx(expected)


def test_mismatched_batches_are_refused():
    with pytest.raises(UserError, match="2 generations but 1 references"):
        scores.pair_scores([[1], [2]], [[1]])


def test_ids_outside_32_bits_are_refused():
    with pytest.raises(UserError, match="token ids must lie"):
        scores.pair_scores([[2**32]], [[1]])
    with pytest.raises(UserError, match="token ids must lie"):
        scores.pair_scores([[-1]], [[1]])


def test_numpy_inputs_of_any_integer_dtype():
    a = np.array([1, 2, 3], dtype=np.int64)
    assert scores.pair_scores([a], [a.astype(np.uint32)]).exact_match[0]


def test_packed_input_equals_list_input():
    from memscan.scan.ragged import Packed

    rows = np.array([[1, 2, 3, 4], [2, 3, 4, 0]], dtype=np.uint32)
    packed = Packed.from_padded(rows, [4, 3])
    assert len(packed) == 2
    x = [[1, 2, 3, 4, 5]]
    as_list = scores.extraction_likelihood(x, [[2, 3, 4, 5], [3, 4, 5]], [0, 0], [1, 2], 2)
    gens = Packed.from_padded(np.array([[2, 3, 4, 5], [3, 4, 5, 0]]), [4, 3])
    assert scores.extraction_likelihood(x, gens, [0, 0], [1, 2], 2).tolist() == as_list.tolist()


@given(st.lists(st.lists(token, max_size=12), max_size=8), st.integers(0, 3))
def test_packing_a_list_of_arrays_equals_numpy_concatenate(lists, odd_one):
    """The Rust packer for lists of uint32 arrays, and the Python fallback for any other item."""
    from memscan.scan.ragged import pack

    arrays = [np.asarray(s, dtype=np.uint32) for s in lists]
    want_tokens = np.concatenate(arrays) if arrays else np.zeros(0, np.uint32)
    want_offsets = np.cumsum([0] + [len(s) for s in lists]).astype(np.uint64)
    mixed = list(arrays)
    if mixed:
        i = odd_one % len(mixed)
        mixed[i] = [int(t) for t in mixed[i]] if odd_one % 2 else mixed[i].astype(np.int64)
    strided = [np.repeat(a, 2)[::2] for a in arrays]  # not contiguous
    for batch in (arrays, mixed, strided):
        tokens, offsets = pack(batch)
        assert tokens.dtype == np.uint32 and offsets.dtype == np.uint64
        assert tokens.tolist() == want_tokens.tolist() and offsets.tolist() == want_offsets.tolist()
    for views in ([a[::-1] for a in arrays], [a[1:] for a in arrays]):  # negative strides, offset starts
        tokens, offsets = pack(views)
        assert tokens.tolist() == [t for v in views for t in v.tolist()]
        assert offsets.tolist() == np.cumsum([0] + [len(v) for v in views]).tolist()
