"""The corpus index against brute force, and its on-disk safety."""

import json
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

import reference as ref
from memscan import CorpusIndex, IndexCorruptError
from memscan.errors import UserError
from strategies import documents, sequence


def build(docs, path, **kw):
    return CorpusIndex.build(docs, path, **kw)


@given(documents, st.lists(sequence, min_size=1, max_size=4), st.integers(1, 4), st.integers(1, 40))
def test_queries_equal_brute_force(docs, queries, k, shard_tokens):
    assume(any(docs))  # an empty corpus is refused (tested below)
    docs_ = docs
    with tempfile.TemporaryDirectory() as tmp:
        one = build(docs_, Path(tmp) / "one")
        sharded = build(docs_, Path(tmp) / "sharded", shard_tokens=shard_tokens)
        for index in (one, sharded):
            for q in queries:
                if q:
                    assert index.count(q) == len(ref.occurrences(docs_, q))
                    assert index.locate(q, limit=10_000) == ref.occurrences(docs_, q)
            stats = index.matching_statistics(queries)
            for q, (lengths, holders) in zip(queries, stats):
                expected = ref.matching_lengths(docs_, q)
                assert lengths.tolist() == expected
                for j, (length, doc) in enumerate(zip(lengths, holders)):
                    if length == 0:
                        assert doc == -1
                    else:  # the named document really holds the span
                        assert ref.occurrences([docs_[doc]], q[j : j + length])
            assert index.coverage(queries, k).tolist() == pytest.approx(
                [ref.coverage(ref.matching_lengths(docs_, q), k) for q in queries]
            )
            spans = index.attribute(queries, k)
            got = [(int(q), int(s), int(n)) for q, s, n in zip(spans.query, spans.start, spans.length)]
            assert got == [
                (i, s, n) for i, q in enumerate(queries) for s, n in ref.spans(ref.matching_lengths(docs_, q), k)
            ]
            assert index.document_lengths().tolist() == [len(d) for d in docs_]
            places = [(d, s) for d, doc in enumerate(docs_) for s in range(len(doc) - k + 1)]
            rows = index.windows(np.array([d for d, _ in places]), np.array([s for _, s in places]), k)
            assert rows.tolist() == [docs_[d][s : s + k] for d, s in places]


@given(
    st.lists(st.lists(st.integers(1, 3), min_size=1, max_size=80), min_size=1, max_size=4),
    st.lists(st.lists(st.integers(0, 4), min_size=17, max_size=150), min_size=1, max_size=3),
)
def test_long_queries_equal_brute_force(docs, queries):
    """Queries longer than the number of searches the scanner keeps in flight at once,
    on a small alphabet so that long matches are common."""
    with tempfile.TemporaryDirectory() as tmp:
        index = build(docs, Path(tmp) / "idx")
        for q, (lengths, holders) in zip(queries, index.matching_statistics(queries)):
            assert lengths.tolist() == ref.matching_lengths(docs, q)
            for j, (length, doc) in enumerate(zip(lengths, holders)):
                assert (doc == -1) if length == 0 else bool(ref.occurrences([docs[doc]], q[j : j + length]))


def test_no_match_crosses_a_document_boundary(tmp_path):
    index = build([[1, 2], [3, 4]], tmp_path / "i")
    assert index.count([2, 3]) == 0
    assert index.matching_statistics([[1, 2, 3, 4]])[0][0].tolist() == [2, 1, 2, 1]


def test_count_batch_and_document_roundtrip(tmp_path):
    docs = [[5, 6, 7], [2**32 - 1, 5, 6], [9]]
    index = build(docs, tmp_path / "i")
    assert index.count_batch([[5, 6], [2**32 - 1], [8]]).tolist() == [2, 1, 0]
    assert [index.document(d).tolist() for d in range(3)] == docs
    assert index.documents().num_rows == 3


def test_windows_outside_a_document_are_refused(tmp_path):
    index = build([[1, 2, 3], [4]], tmp_path / "i")
    with pytest.raises(UserError, match="not all inside document 1"):
        index.windows(np.array([1]), np.array([0]), 2)
    with pytest.raises(UserError, match="out of range"):
        index.windows(np.array([2]), np.array([0]), 1)


def test_limit_bounds_locate(tmp_path):
    index = build([[1, 1, 1, 1]], tmp_path / "i")
    assert len(index.locate([1], limit=2)) == 2
    assert index.count([1, 1]) == 3


def test_empty_ngram_and_bad_k_are_refused(tmp_path):
    index = build([[1, 2]], tmp_path / "i")
    with pytest.raises(UserError, match="empty"):
        index.count([])
    with pytest.raises(UserError, match="k must be at least 1"):
        index.coverage([[1]], 0)


def test_empty_corpus_is_refused_and_leaves_nothing(tmp_path):
    with pytest.raises(UserError, match="empty"):
        build([[], []], tmp_path / "i")
    assert list(tmp_path.iterdir()) == []


def test_existing_directory_is_refused_unless_overwrite(tmp_path):
    build([[1, 2]], tmp_path / "i")
    with pytest.raises(UserError, match="already exists"):
        build([[3]], tmp_path / "i")
    assert build([[3]], tmp_path / "i", overwrite=True).count([3]) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["i"]


def test_an_interrupted_build_leaves_no_index(tmp_path):
    def docs():
        yield [1, 2]
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        build(docs(), tmp_path / "i", shard_tokens=1)
    assert list(tmp_path.iterdir()) == []


@pytest.fixture
def small_index(tmp_path):
    build([[1, 2, 3], [4, 5]], tmp_path / "i")
    return tmp_path / "i"


def test_truncated_file_is_detected(small_index):
    sa = small_index / "shard-00000" / "sa.u32"
    sa.write_bytes(sa.read_bytes()[:-4])
    with pytest.raises(IndexCorruptError, match="truncated"):
        CorpusIndex.open(small_index)


def test_altered_file_fails_its_checksum(small_index):
    names = small_index / "documents.parquet"  # damage the structural checks cannot see
    data = bytearray(names.read_bytes())
    data[len(data) // 2] ^= 0xFF
    names.write_bytes(bytes(data))
    with pytest.raises(IndexCorruptError, match="checksum"):
        CorpusIndex.open(small_index)
    CorpusIndex.open(small_index, verify=False)  # sizes and structure still agree: opens unverified


def test_damaged_structure_is_refused_even_unverified(small_index):
    tokens = small_index / "shard-00000" / "tokens.u16"
    data = bytearray(tokens.read_bytes())
    data[0] ^= 0xFF  # a rank outside the vocabulary, where a sampled suffix starts
    tokens.write_bytes(bytes(data))
    with pytest.raises(IndexCorruptError, match="suffix array entry"):
        CorpusIndex.open(small_index, verify=False)


def test_not_an_index(tmp_path):
    (tmp_path / "x").mkdir()
    with pytest.raises(IndexCorruptError, match="not a memscan index"):
        CorpusIndex.open(tmp_path / "x")
    with pytest.raises(UserError, match="no such index"):
        CorpusIndex.open(tmp_path / "missing")


def test_other_format_version_is_refused(small_index):
    header = small_index / "memscan-index.json"
    data = json.loads(header.read_text())
    data["format_version"] = 99
    header.write_text(json.dumps(data))
    with pytest.raises(IndexCorruptError, match="version 99"):
        CorpusIndex.open(small_index)


def test_a_version_1_index_is_refused_with_a_rebuild_hint(small_index):
    """Version 1 (4-byte tokens, a header-wide token_width) predates per-shard widths."""
    header = small_index / "memscan-index.json"
    data = json.loads(header.read_text())
    data["format_version"], data["token_width"] = 1, 4
    for shard in data["shards"]:
        del shard["token_width"]
    header.write_text(json.dumps(data))
    with pytest.raises(IndexCorruptError, match="version 1 is not supported.*rebuild the index"):
        CorpusIndex.open(small_index)


def test_tokens_take_two_bytes_where_the_alphabet_fits_and_four_otherwise(tmp_path):
    rng = np.random.default_rng(3)
    narrow_docs = [[7, 3, 7, 2**31], [3, 2**31, 7]]
    wide_docs = [(np.arange(70_000) * 3).tolist(), rng.integers(0, 5, 300).tolist(), [9, 3, 6]]
    narrow, wide = build(narrow_docs, tmp_path / "narrow"), build(wide_docs, tmp_path / "wide")
    assert (tmp_path / "narrow" / "shard-00000" / "tokens.u16").exists()
    assert [s["token_width"] for s in wide.header["shards"]] == [4]
    for index, docs in ((narrow, narrow_docs), (wide, wide_docs)):
        for q in ([7, 2**31], [3], [9, 3, 6], [0, 3], [3, 6, 9], [4, 4], [2, 2, 2]):
            assert index.count(q) == len(ref.occurrences(docs, q)), q
            assert index.locate(q, limit=10_000) == ref.occurrences(docs, q), q
        assert [index.document(i).tolist() for i in range(len(docs))] == docs
    assert narrow.size_bytes < wide.size_bytes


def test_tokenizer_mismatch_and_out_of_range_ids(tmp_path):
    index = build([[1, 2]], tmp_path / "i", tokenizer={"name": "a", "sha256": "1", "vocab_size": 10})
    with pytest.raises(UserError, match="built with tokenizer 'a'"):
        index.check_tokenizer({"name": "b", "sha256": "2"})
    with pytest.raises(UserError, match="token id 12 is out of range"):
        index.check_ids([np.array([1, 12], dtype=np.uint32)])
