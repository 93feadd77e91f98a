"""A damaged index is an IndexCorruptError or a correct answer: never a panic, a crash
or a wrong count. Seeded random corruption of a small index's files, opened the default
way (checksums verified, as for every index under 1 GiB) and with only the structural
checks every opening makes (the case of a large index)."""

from __future__ import annotations

import json
import random
import shutil

import numpy as np
import pytest

from helpers import fails_cleanly, memscan, write_jsonl
from memscan.errors import IndexCorruptError, UserError
from memscan.scan.index import CorpusIndex

CASES = 300
SHARD_FILES = ["tokens.u16", "sa.u32", "docs.u64", "vocab.u32"]  # a small vocabulary: 2-byte tokens


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    rng = np.random.default_rng(7)
    docs = [rng.integers(0, 9, size=rng.integers(1, 25)).astype(np.uint32) * 1000 for _ in range(60)]
    path = tmp_path_factory.mktemp("damage") / "pristine"
    CorpusIndex.build(docs, path, shard_tokens=300)
    return path, docs


def _answers(index: CorpusIndex, docs) -> list:
    queries = docs[:12]
    return [
        [index.count(d[:2]) for d in queries],
        [index.locate(d[:2], limit=1000) for d in queries],
        [ms[0].tolist() for ms in index.matching_statistics(queries)],
        [index.document(i).tolist() for i in range(index.n_documents)],
        index.documents().column("id").to_pylist(),
    ]


def _corrupt(path, rng: random.Random) -> str:
    shards = sorted(p.name for p in path.glob("shard-*"))
    target = rng.choice([f"{rng.choice(shards)}/{rng.choice(SHARD_FILES)}", "documents.parquet", "memscan-index.json"])
    data = bytearray((path / target).read_bytes())
    action = rng.choice(["flip", "word", "truncate", "extend"])
    if action == "truncate" or not data:
        del data[rng.randrange(len(data) + 1) :]
    elif action == "extend":
        data += bytes(rng.randrange(1, 9))
    else:
        at = rng.randrange(len(data))
        if action == "flip":
            data[at] ^= 1 << rng.randrange(8)
        else:
            data[at : at + 4] = rng.choice([0, 1, 2**32 - 1, rng.getrandbits(32)]).to_bytes(4, "little")
    (path / target).write_bytes(bytes(data))
    return f"{action} {target}"


def _recompute_checksums(path) -> None:
    """Damage the checksums cannot see: recompute them after the corruption."""
    header = json.loads((path / "memscan-index.json").read_text())
    for rel in header["files"]:
        data = (path / rel).read_bytes()
        header["files"][rel] = _core_sum(data)
    (path / "memscan-index.json").write_text(json.dumps(header))


def _core_sum(data: bytes) -> dict:
    import xxhash

    return {"bytes": len(data), "xxh3": f"{xxhash.xxh3_64_intdigest(data):016x}"}


@pytest.mark.parametrize("checksums", ["verified", "recomputed"])
def test_random_corruption_is_an_error_or_a_correct_answer(pristine, tmp_path, checksums):
    source, docs = pristine
    expected = _answers(CorpusIndex.open(source), docs)
    rng = random.Random(11)
    outcomes = {"refused": 0, "correct": 0, "wrong": 0}
    for case in range(CASES):
        path = tmp_path / f"case-{case}"
        shutil.copytree(source, path)
        what = _corrupt(path, rng)
        if checksums == "recomputed":
            try:
                _recompute_checksums(path)
            except (ValueError, KeyError, TypeError, OSError):
                pass  # a header too damaged to rewrite is opened as it is
        try:
            answers = _answers(CorpusIndex.open(path), docs)
        except (IndexCorruptError, UserError):  # anything else (a PanicException above all) fails the test
            outcomes["refused"] += 1
        else:
            outcomes["correct" if answers == expected else "wrong"] += 1
            if checksums == "verified":
                assert answers == expected, f"case {case} ({what}): a wrong answer from a verified index"
        shutil.rmtree(path)
    print(checksums, outcomes)
    assert outcomes["refused"] > CASES // 2


def test_a_damaged_document_table_is_an_index_error(pristine, tmp_path):
    source, _ = pristine
    path = tmp_path / "copy"
    shutil.copytree(source, path)
    (path / "documents.parquet").write_bytes(b"not parquet")
    _recompute_checksums(path)
    with pytest.raises(IndexCorruptError, match="documents.parquet"):
        CorpusIndex.open(path).documents()


def test_a_query_on_an_unsampled_bad_entry_is_an_index_error_not_a_panic(tmp_path):
    """A document whose token lies outside its shard's vocabulary (damage the opening checks
    cannot see without reading every token) is an IndexCorruptError from the query."""
    path = tmp_path / "i"
    CorpusIndex.build([np.array([5, 6, 7], np.uint32)], path)
    tokens = path / "shard-00000" / "tokens.u16"
    data = bytearray(tokens.read_bytes())
    data[2:4] = (9).to_bytes(2, "little")  # rank 9 of a 3-token vocabulary
    tokens.write_bytes(bytes(data))
    _recompute_checksums(path)
    with pytest.raises(IndexCorruptError):
        CorpusIndex.open(path).document(0)


def test_score_against_a_damaged_index_is_one_line(pristine, tmp_path):
    source, _ = pristine
    path = tmp_path / "copy"
    shutil.copytree(source, path)
    docs = path / "shard-00000" / "docs.u64"
    data = bytearray(docs.read_bytes())
    data[0:8] = (2**40).to_bytes(8, "little")
    docs.write_bytes(bytes(data))
    _recompute_checksums(path)
    queries = tmp_path / "q.jsonl"
    write_jsonl(queries, [{"tokens": [1000, 2000, 3000]}])
    fails_cleanly(memscan("score", queries, "--index", path, "-o", tmp_path / "o.parquet"), "document table")
