"""Matching statistics against a large memory-mapped index: two memscan builds side by
side, with the index's pages cold (dropped from the page cache) and warm.

    python benches/bench_matching.py --index /big/disk/idx-1b --tokens 1e9 \
        --build old=/path/to/old/python --build new=python

The index is built once (by the first build) from a synthetic Zipf corpus in one shard
and reused when the folder exists. The queries are generations as an audit makes them:
windows of the corpus, half left as they are and half with every fourth token changed,
`--length` tokens each. Each build runs in its own process (its `memscan` package first
on sys.path); every run is checked to give the same lengths and documents as the first
build's. Cold runs first drop the index files from the page cache (posix_fadvise
DONTNEED, which needs no privileges), then query; warm runs repeat the query at once.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from common import peak_rss_mib, zipf_corpus

WORKER = r"""
import hashlib, json, os, sys, time
import numpy as np
from memscan import _core

index_dir, queries_path, threads, cold = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4] == "cold"
if cold:
    for root, _, files in os.walk(index_dir):
        for f in files:
            fd = os.open(os.path.join(root, f), os.O_RDONLY)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            os.close(fd)
data = np.load(queries_path)
index = _core.CorpusIndex.open(index_dir, False)
t = time.perf_counter()
ms = index.matching_statistics(data["tokens"], data["offsets"], threads)
lengths, docs = ms.lengths, ms.docs
seconds = time.perf_counter() - t
digest = hashlib.sha256(np.asarray(lengths).tobytes() + np.asarray(docs).tobytes()).hexdigest()
print(json.dumps({"seconds": seconds, "positions": int(data["tokens"].size), "digest": digest,
                  "longest_mean": float(np.asarray(lengths).mean())}))
"""


def build_index(path: Path, tokens: int, package: str) -> float:
    sys.path.insert(0, package)
    from memscan import _core

    started = time.perf_counter()
    corpus, offsets = zipf_corpus(tokens)
    writer = _core.IndexWriter(str(path))
    writer.add_shard(corpus, offsets, None)
    writer.finish('{"tokenizer": null}')
    return time.perf_counter() - started


def make_queries(index: Path, queries: int, length: int, out: Path) -> None:
    """Windows of the indexed corpus (drawn again from the same seeded corpus, cheaper than
    reading them back), every other one with every fourth token changed."""
    import numpy as np

    corpus, offsets = zipf_corpus(int(json.loads((index / "bench.json").read_text())["tokens"]))
    rng = np.random.default_rng(1)
    docs = rng.integers(0, len(offsets) - 1, size=queries)
    room = (offsets[docs + 1] - offsets[docs]).astype(np.int64) - length
    starts = offsets[docs].astype(np.int64) + (rng.random(queries) * np.maximum(room, 1)).astype(np.int64)
    rows = corpus[starts[:, None] + np.arange(length)]
    rows[1::2, ::4] = (rows[1::2, ::4] + 1) % 49151
    np.savez(out, tokens=rows.reshape(-1), offsets=np.arange(0, rows.size + 1, length, dtype=np.uint64))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--index", type=Path, required=True, help="folder of the index (built when missing)")
    parser.add_argument("--tokens", type=float, default=1e9)
    parser.add_argument("--build", action="append", required=True, help="NAME=DIR holding the memscan package")
    parser.add_argument("--queries", type=int, default=100_000)
    parser.add_argument("--length", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    builds = dict(b.split("=", 1) for b in args.build)
    if not args.index.exists():
        seconds = build_index(args.index, int(args.tokens), next(iter(builds.values())))
        (args.index / "bench.json").write_text(json.dumps({"tokens": int(args.tokens), "build_s": seconds}))
        print(f"built {int(args.tokens):,} tokens in {seconds:.0f} s, peak {peak_rss_mib():.0f} MiB", flush=True)
    queries = args.index.parent / f"{args.index.name}-queries-{args.queries}x{args.length}.npz"
    if not queries.exists():  # drawing them regenerates the corpus: kept beside the index for the next run
        make_queries(args.index, args.queries, args.length, queries)
    runs: list[dict] = []
    for round_ in range(args.rounds):
        for name, package in builds.items():
            for state in ("cold", "warm"):
                code = f"import sys; sys.path.insert(0, {package!r})\n" + WORKER
                command = [sys.executable, "-c", code, str(args.index), str(queries), str(args.threads), state]
                out = subprocess.run(command, capture_output=True, text=True, check=True)
                run = {"build": name, "state": state, "round": round_, **json.loads(out.stdout)}
                runs.append(run)
                print(json.dumps(run), flush=True)
    if len({r["digest"] for r in runs}) != 1:
        raise SystemExit("the builds disagree on the matching statistics")
    first = next(iter(builds))
    best = {
        (name, state): min(r["seconds"] for r in runs if (r["build"], r["state"]) == (name, state))
        for name in builds
        for state in ("cold", "warm")
    }
    positions = runs[0]["positions"]
    print(
        f"\n{int(args.tokens):,}-token index, {args.queries:,} queries x {args.length} tokens "
        f"({positions:,} positions), {args.threads} threads, best of {args.rounds}; outputs identical"
    )
    print(f"| build | page cache | s | M positions/s | vs {first} |")
    print("|---|---|---|---|---|")
    for (name, state), seconds in best.items():
        ratio = best[(first, state)] / seconds
        print(f"| {name} | {state} | {seconds:.2f} | {positions / seconds / 1e6:.3f} | {ratio:.2f}x |")


if __name__ == "__main__":
    main()
