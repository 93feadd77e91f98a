"""The Ray engine (`--engine ray`) on an in-process 2-CPU cluster: builds and queries
equal the local path's, a dying worker is retried, and bad settings are one line."""

from __future__ import annotations

import os
import random
import sys

import numpy as np
import pyarrow.parquet as pq
import pytest

from helpers import fails_cleanly, memscan, write_jsonl
from memscan.cluster import ray_build
from memscan.cluster.ray_query import RayIndex, shard_groups
from memscan.cluster.ray_session import connect
from memscan.errors import UserError
from memscan.scan.index import CorpusIndex
from memscan.scan.tokenizer import load_tokenizer

WORDS = "seed ash oak elm fir yew box bay fig lime pear plum".split()


@pytest.fixture(scope="module")
def ray_cluster():
    ray = connect()  # no address: a local cluster of this machine's CPUs
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def corpus_files(tmp_path_factory):
    """Three JSONL inputs of repetitive text, so that long spans recur across documents and files."""
    root = tmp_path_factory.mktemp("corpus")
    draw = random.Random(3)
    paths = []
    for f in range(3):
        rows = [{"id": f"{f}-{d}", "text": " ".join(draw.choices(WORDS, k=80))} for d in range(40)]
        write_jsonl(root / f"part{f}.jsonl", rows)
        paths.append(root / f"part{f}.jsonl")
    return paths


def queries_from(index: CorpusIndex, count: int = 40) -> list[np.ndarray]:
    """Spliced pieces of indexed documents (long matches) and random tokens (short ones)."""
    draw = np.random.default_rng(0)
    out = []
    for _ in range(count):
        a, b = (index.document(int(d)) for d in draw.integers(0, index.n_documents, 2))
        out.append(np.concatenate([a[5:40], b[10:30], draw.choice(a, 10)]).astype(np.uint32))
    return out


def test_shard_groups_are_contiguous_balanced_and_cover_every_shard():
    draw = random.Random(0)
    for _ in range(200):
        tokens = [draw.randint(1, 100) for _ in range(draw.randint(1, 12))]
        groups = draw.randint(1, 6)
        runs = shard_groups(tokens, groups)
        assert [s for run in runs for s in run] == list(range(len(tokens)))
        assert 1 <= len(runs) <= groups and all(runs)


def test_ray_build_equals_the_local_build(ray_cluster, corpus_files, tmp_path):
    local, distributed = tmp_path / "local", tmp_path / "ray"
    assert memscan("index", "build", *corpus_files, "-o", local, "--shard-tokens", 700).returncode == 0
    result = memscan("index", "build", *corpus_files, "-o", distributed, "--shard-tokens", 700, "--engine", "ray")
    assert result.returncode == 0, result.stderr
    assert not (tmp_path / "ray.partial").exists()
    assert memscan("index", "info", distributed, "--verify").returncode == 0
    a, b = CorpusIndex.open(local), CorpusIndex.open(distributed)
    assert len(b.header["shards"]) >= 3  # shards end at input boundaries
    assert a.documents().equals(b.documents())
    assert (a.n_tokens, a.n_documents) == (b.n_tokens, b.n_documents)
    queries = queries_from(a)
    assert np.array_equal(a.count_batch(queries), b.count_batch(queries))
    mine, theirs = a.statistics(queries), b.statistics(queries)
    assert np.array_equal(mine.lengths, theirs.lengths)
    # Shard boundaries differ, so where a span occurs in several documents another may be
    # named: each named document must hold the span.
    for q, (lengths, docs) in enumerate(b.matching_statistics(queries)):
        for j in range(0, lengths.size, 7):
            if lengths[j]:
                span = queries[q][j : j + lengths[j]]
                assert any(np.array_equal(span, w) for w in _windows(b.document(int(docs[j])), span.size))


def _windows(document: np.ndarray, length: int):
    return (document[i : i + length] for i in range(document.size - length + 1))


def test_ray_queries_equal_the_local_index_exactly(ray_cluster, kjv_index):
    local = CorpusIndex.open(kjv_index)
    queries = queries_from(local, 30)
    expected = local.statistics(queries)
    for workers in (1, 2):  # the cluster has 2 CPUs
        with RayIndex(local, workers=workers) as served:
            got = served.statistics(queries)
            assert np.array_equal(expected.lengths, got.lengths) and np.array_equal(expected.docs, got.docs)
            assert np.array_equal(expected.offsets, got.offsets)
            assert np.array_equal(local.count_batch(queries[:8]), served.count_batch(queries[:8]))


def test_score_with_ray_writes_the_local_table(ray_cluster, kjv_index, tmp_path):
    index = CorpusIndex.open(kjv_index)
    tok = load_tokenizer()
    rows = [{"id": str(i), "text": tok.decode(q)} for i, q in enumerate(queries_from(index, 12))]
    write_jsonl(tmp_path / "gens.jsonl", rows)
    local, distributed = tmp_path / "local.parquet", tmp_path / "ray.parquet"
    assert memscan("score", tmp_path / "gens.jsonl", "--index", kjv_index, "-o", local, "--k", 8).returncode == 0
    result = memscan(
        "score", tmp_path / "gens.jsonl", "--index", kjv_index, "-o", distributed, "--k", 8, "--engine", "ray",
        "--workers", 2,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert pq.read_table(local).equals(pq.read_table(distributed))


def test_a_slice_whose_worker_dies_is_built_again(ray_cluster, corpus_files, tmp_path):
    marker = tmp_path / "died-once"

    def dies_once(job, tokenizer_json):
        if job.number == 1 and not marker.exists():
            marker.write_text("")
            os._exit(1)  # the worker process dies mid-task, as on a lost node
        return ray_build.build_slice(job, tokenizer_json)

    tok = load_tokenizer()
    built = ray_build.build_index_ray([str(p) for p in corpus_files], tmp_path / "idx", tok, task=dies_once)
    assert marker.exists()
    reference = ray_build.build_index_ray([str(p) for p in corpus_files], tmp_path / "again", tok)
    assert built.documents().equals(reference.documents()) and built.header["files"] == reference.header["files"]


def test_a_failing_slice_leaves_no_index(ray_cluster, corpus_files, tmp_path):
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"id": "x", "text": "fine"}\n{not json\n')
    out = tmp_path / "idx"
    result = memscan("index", "build", corpus_files[0], broken, "-o", out, "--engine", "ray")
    fails_cleanly(result, "broken.jsonl:2: malformed JSON")
    assert not out.exists() and not (tmp_path / "idx.partial").exists()


def test_a_worker_that_cannot_see_the_output_fails_in_one_line(tmp_path):
    tok = load_tokenizer()
    job = ray_build.SliceJob(0, "kjv", "kjv", str(tmp_path), tok.name, "text", "id", False, None, 10, 1)
    with pytest.raises(UserError, match="not visible from the Ray worker"):
        ray_build.build_slice(job, tok.tokenizer.to_str())


def test_more_threads_per_task_than_the_cluster_has_are_refused(ray_cluster, tmp_path):
    result = memscan("index", "build", "kjv", "-o", tmp_path / "i", "--engine", "ray", "--threads", 3)
    fails_cleanly(result, "--threads 3 per Ray task, but the cluster has 2 CPUs")
    assert not (tmp_path / "i").exists() and not (tmp_path / "i.partial").exists()


def test_ray_settings_without_the_ray_engine_are_refused(kjv_index, tmp_path):
    gens = tmp_path / "g.jsonl"
    write_jsonl(gens, [{"id": "a", "text": "In the beginning"}])
    fails_cleanly(
        memscan("score", gens, "--index", kjv_index, "--workers", 2, "-o", tmp_path / "o.parquet"), "--engine ray only"
    )
    fails_cleanly(memscan("score", gens, "--references", gens, "--engine", "ray"), "applies to --index only")


def test_more_workers_than_the_cluster_has_cpus_are_refused(ray_cluster, kjv_index):
    with pytest.raises(UserError, match="3 Ray workers of 1 threads need 3 CPUs; the cluster has 2"):
        RayIndex(CorpusIndex.open(kjv_index), workers=3)


def test_an_unreachable_cluster_is_one_line(kjv_index, tmp_path):
    gens = tmp_path / "g.jsonl"
    write_jsonl(gens, [{"id": "a", "text": "In the beginning"}])
    result = memscan("index", "build", "kjv", "-o", tmp_path / "i", "--engine", "ray", "--address", "127.0.0.1:1")
    fails_cleanly(result, "cannot reach a Ray cluster at 127.0.0.1:1")
    assert not (tmp_path / "i").exists() and not (tmp_path / "i.partial").exists()
    result = memscan("score", gens, "--index", kjv_index, "--engine", "ray", "--address", "nowhere:x")
    fails_cleanly(result, "expected HOST:PORT")


def test_the_ray_engine_without_ray_says_how_to_install_it(kjv_index, tmp_path, monkeypatch):
    gens = tmp_path / "g.jsonl"
    write_jsonl(gens, [{"id": "a", "text": "In the beginning"}])
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray now fails as if not installed
    result = memscan("score", gens, "--index", kjv_index, "--engine", "ray", "-o", tmp_path / "o.parquet")
    fails_cleanly(result, "pip install 'memscan[ray]'")
    assert not (tmp_path / "o.parquet").exists()
