"""Index build and query throughput against libdivsufsort (pydivsufsort) and the
infini-gram package's indexer and engine, on the same token stream.

Each build runs in a child process of its own so that its peak memory can be read;
queries then run side by side in this process against both finished indexes.

    python benches/bench_index.py --tokens 10000000 --threads 1 2 --baselines --queries
    python benches/bench_index.py --tokens 1000000000 --threads 2        # ours only
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from argparse import Namespace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import VOCAB, best_of, peak_rss_mib, zipf_corpus

HERE = Path(__file__).resolve()


# ---- builds, one per child process ---------------------------------------------------


def build_memscan(tokens, offsets, out: Path, threads: int) -> None:
    from memscan import _core

    writer = _core.IndexWriter(str(out))
    writer.add_shard(tokens, offsets, threads)
    writer.finish("{}")


def build_divsufsort(tokens, offsets, out: Path, threads: int) -> None:
    from pydivsufsort import divsufsort

    divsufsort(tokens)  # single-threaded; no document separators


def write_infinigram_input(tokens, offsets, out: Path) -> None:
    """infini-gram's v4 layout: u16 tokens, each document preceded by 0xFFFF."""
    out.mkdir(parents=True)
    with open(out / "tokenized.0", "wb") as ds, open(out / "offset.0", "wb") as od:
        position = 0
        for i in range(len(offsets) - 1):
            doc = tokens[offsets[i] : offsets[i + 1]].astype(np.uint16)
            od.write(np.array([position], dtype=np.uint64).tobytes())
            chunk = b"\xff\xff" + doc.tobytes()
            ds.write(chunk)
            position += len(chunk)


def build_infinigram(out: Path, threads: int, mem_gib: int = 20) -> None:
    from infini_gram.indexing import build_sa

    args = Namespace(
        save_dir=str(out), temp_dir=str(out), worker_id=0, workers=1, shards=1, cpus=threads, mem=mem_gib, token_width=2
    )
    build_sa(args)


def child(system: str, n_tokens: int, threads: int, out: str) -> None:
    tokens, offsets = zipf_corpus(n_tokens)
    out = Path(out)
    if system == "infini-gram":
        write_infinigram_input(tokens, offsets, out)
        del tokens, offsets
        start = time.perf_counter()
        with open(os.devnull, "w") as quiet:
            stdout, sys.stdout = sys.stdout, quiet
            try:
                build_infinigram(out, threads)
            finally:
                sys.stdout = stdout
    else:
        start = time.perf_counter()
        {"memscan": build_memscan, "divsufsort": build_divsufsort}[system](tokens, offsets, out, threads)
    elapsed = time.perf_counter() - start
    print(
        json.dumps(
            {
                "system": system,
                "tokens": n_tokens,
                "threads": threads,
                "build_s": round(elapsed, 2),
                "peak_mib": round(peak_rss_mib()),
            }
        )
    )


def run_child(system, n_tokens, threads, out) -> dict:
    done = subprocess.run(
        [sys.executable, str(HERE), "_child", system, str(n_tokens), str(threads), str(out)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise SystemExit(f"{system} build failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# ---- queries, side by side -------------------------------------------------------------


def query_bench(tokens, ours_dir: Path, theirs_dir: Path, seed: int = 1) -> dict:
    from infini_gram.engine import InfiniGramEngine

    from memscan import CorpusIndex

    rng = np.random.default_rng(seed)
    ours = CorpusIndex.open(ours_dir, verify=False)
    theirs = InfiniGramEngine(
        index_dir=str(theirs_dir), eos_token_id=VOCAB - 1, vocab_size=65535, token_dtype="u16", version=4
    )

    starts = rng.integers(0, len(tokens) - 16, 10_000)
    ngrams = [tokens[s : s + int(rng.integers(2, 9))] for s in starts]
    as_lists = [g.tolist() for g in ngrams]
    assert [ours.count(g) for g in ngrams[:200]] == [theirs.count(g)["count"] for g in as_lists[:200]]
    t_theirs_count = best_of(3, lambda: [theirs.count(g) for g in as_lists])
    t_ours_count = best_of(3, lambda: [ours.count(g) for g in ngrams])
    t_ours_batch = best_of(3, lambda: ours.count_batch(ngrams, threads=1))

    copied = [tokens[s : s + 128] for s in rng.integers(0, len(tokens) - 128, 100)]
    fresh, _ = zipf_corpus(128 * 100, seed=seed + 1)
    queries = copied + [fresh[i * 128 : (i + 1) * 128] for i in range(100)]
    query_lists = [q.tolist() for q in queries]
    ours_ms = [m.tolist() for m, _ in ours.matching_statistics(queries, threads=1)]
    # creativity()'s rs[i] is the end of the longest corpus span starting at i; lengths are rs[i] - i
    theirs_ms = [[end - i for i, end in enumerate(theirs.creativity(q)["rs"])] for q in query_lists]
    t_theirs_ms = best_of(3, lambda: [theirs.creativity(q) for q in query_lists])
    t_ours_ms = best_of(3, lambda: ours.matching_statistics(queries, threads=1))
    return {
        "count_queries": len(ngrams),
        "count_per_s_infinigram": round(len(ngrams) / t_theirs_count),
        "count_per_s_memscan_one_call_each": round(len(ngrams) / t_ours_count),
        "count_per_s_memscan_batch_1_thread": round(len(ngrams) / t_ours_batch),
        "ms_queries": len(queries),
        "ms_positions_per_s_infinigram_creativity": round(128 * len(queries) / t_theirs_ms),
        "ms_positions_per_s_memscan_1_thread": round(128 * len(queries) / t_ours_ms),
        "ms_outputs_identical": ours_ms == theirs_ms,
    }


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--tokens", type=int, default=10_000_000)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--baselines", action="store_true", help="Also build with pydivsufsort and infini-gram.")
    parser.add_argument("--queries", action="store_true", help="Compare query throughput with infini-gram's engine.")
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    work = Path(args.workdir or tempfile.mkdtemp(prefix="memscan-bench-"))
    rows = []
    for threads in args.threads:
        rows.append(run_child("memscan", args.tokens, threads, work / f"memscan-{threads}"))
        if args.baselines:
            rows.append(run_child("infini-gram", args.tokens, threads, work / f"infinigram-{threads}"))
    if args.baselines:
        rows.append(run_child("divsufsort", args.tokens, 1, work / "divsufsort"))
    for row in rows:
        row["tokens_per_s"] = round(row["tokens"] / row["build_s"])
        print(json.dumps(row), flush=True)
    if args.queries:
        tokens, _ = zipf_corpus(args.tokens)
        threads = args.threads[0]
        print(json.dumps(query_bench(tokens, work / f"memscan-{threads}", work / f"infinigram-{threads}")), flush=True)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "_child":
        child(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5])
    else:
        main()
