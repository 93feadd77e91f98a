"""The Ray engine against the local path on this machine: index build and matching
statistics, with 1 and 2 Ray workers, side by side in one process on the same files (queries: the faster of two runs).

The corpus is synthetic (benches/common.zipf_corpus), written as Parquet files of
token-id documents so that the build times reading, packing, sorting and writing but
not a tokenizer (which runs on every core by itself). Each Ray setting starts its own
local cluster (`ray.init(num_cpus=W)`); its start-up and the actors' start are timed
apart from the work, since a long-running cluster pays them once.

    python benches/bench_ray.py --tokens 8000000 --files 8 --queries 20000
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import zipf_corpus
from memscan.cluster.ray_build import build_index_ray
from memscan.cluster.ray_query import RayIndex
from memscan.scan.index import CorpusIndex
from memscan.scan.pipeline import build_index
from memscan.scan.tokenizer import load_tokenizer


def write_files(root: Path, n_tokens: int, n_files: int) -> list[str]:
    tokens, offsets = zipf_corpus(n_tokens)
    docs = [tokens[offsets[i] : offsets[i + 1]] for i in range(len(offsets) - 1)]
    per_file = -(-len(docs) // n_files)
    paths = []
    for f in range(n_files):
        part = docs[f * per_file : (f + 1) * per_file]
        table = pa.table({"id": [f"{f}-{i}" for i in range(len(part))], "tokens": [d.tolist() for d in part]})
        paths.append(str(root / f"part{f:03}.parquet"))
        pq.write_table(table, paths[-1])
    return paths


def queries_of(index: CorpusIndex, count: int, length: int) -> list[np.ndarray]:
    """Half corpus windows (long matches), half windows with a changed token in the middle."""
    rng = np.random.default_rng(1)
    docs = rng.integers(0, index.n_documents, count)
    windows = index.windows(docs, rng.integers(0, 1000 - length, count), length)
    windows[::2, length // 2] = (windows[::2, length // 2] + 1) % 49151
    return list(windows)


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def best_of_two(fn):
    (result, first), (_, second) = timed(fn), timed(fn)
    return result, min(first, second)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tokens", type=int, default=8_000_000)
    parser.add_argument("--files", type=int, default=8)
    parser.add_argument("--queries", type=int, default=20_000)
    parser.add_argument("--query-tokens", type=int, default=32)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--json", type=Path, default=None, help="Also write the figures here.")
    args = parser.parse_args()
    import ray

    tok = load_tokenizer()
    results: dict = {"tokens": args.tokens, "files": args.files, "build": {}, "queries": {}}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        paths = write_files(root, args.tokens, args.files)
        shard_tokens = -(-args.tokens // args.files)
        for threads in args.workers:
            build = partial(
                build_index, paths, root / f"local{threads}", tok, shard_tokens=shard_tokens, threads=threads
            )
            _, seconds = timed(build)
            results["build"][f"local, {threads} threads"] = seconds
        index = CorpusIndex.open(root / "local1")
        queries = queries_of(index, args.queries, args.query_tokens)
        positions = args.queries * args.query_tokens
        index.statistics(queries[:10])  # this process has mapped the shards, as the actors below
        for threads in args.workers:
            stats, seconds = best_of_two(partial(index.statistics, queries, threads))
            results["queries"][f"local, {threads} threads"] = seconds
        expected = stats
        for workers in args.workers:
            start = partial(
                ray.init, num_cpus=workers, include_dashboard=False, logging_level=logging.ERROR, log_to_driver=False
            )
            _, started = timed(start)
            _, seconds = timed(partial(build_index_ray, paths, root / f"ray{workers}", tok, shard_tokens=shard_tokens))
            results["build"][f"ray, {workers} workers"] = seconds
            served, actors = timed(partial(RayIndex, index, workers=workers))
            served.statistics(queries[:10])  # the actors have mapped their shards
            got, seconds = best_of_two(partial(served.statistics, queries))
            assert np.array_equal(got.lengths, expected.lengths) and np.array_equal(got.docs, expected.docs)
            results["queries"][f"ray, {workers} workers"] = seconds
            results[f"ray start, {workers} workers (s)"] = {"ray.init": started, "actors": actors}
            served.close()
            ray.shutdown()
    print(
        f"{args.tokens / 1e6:.0f} M tokens in {args.files} files; {args.queries} queries of {args.query_tokens} tokens"
    )
    print("| build | s | M tokens/s | vs local, 1 thread |")
    print("|---|---|---|---|")
    base = results["build"][f"local, {args.workers[0]} threads"]
    for name, seconds in results["build"].items():
        print(f"| {name} | {seconds:.2f} | {args.tokens / seconds / 1e6:.2f} | {base / seconds:.2f}x |")
    print("\n| matching statistics | s | M positions/s | vs local, 1 thread |")
    print("|---|---|---|---|")
    base = results["queries"][f"local, {args.workers[0]} threads"]
    for name, seconds in results["queries"].items():
        print(f"| {name} | {seconds:.3f} | {positions / seconds / 1e6:.2f} | {base / seconds:.2f}x |")
    for key, value in results.items():
        if key.startswith("ray start"):
            print(f"{key}: ray.init {value['ray.init']:.1f} s, actors {value['actors']:.1f} s")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
