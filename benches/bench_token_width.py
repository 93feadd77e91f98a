"""Query speed and bytes per token of two memscan builds side by side, e.g. the index
format before and after a change (version 1 stored every token in 4 bytes; version 2
stores a shard's tokens in 2 bytes where its alphabet fits).

    python benches/bench_token_width.py --build old=/path/to/old/python --build new=python

Each build runs in its own process (its `memscan` package first on sys.path), on the
same seeded corpus (Zipf-distributed ids over a 49 152-token vocabulary, like a BPE
corpus), builds alternating for `--rounds` rounds; the table gives medians.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile

WORKER = r"""
import json, os, sys, tempfile, time
import numpy as np
from memscan import _core

tokens_n, queries_n = int(sys.argv[1]), int(sys.argv[2])
rng = np.random.default_rng(0)
ids = (rng.zipf(1.2, size=tokens_n) % 49152).astype(np.uint32)
offsets = np.unique(np.concatenate([[0], rng.integers(1, tokens_n, size=tokens_n // 1000), [tokens_n]]))
offsets = offsets.astype(np.uint64)
with tempfile.TemporaryDirectory() as tmp:
    path = os.path.join(tmp, "idx")
    writer = _core.IndexWriter(path)
    writer.add_shard(ids, offsets, 1)
    writer.finish("{}")
    index = _core.CorpusIndex.open(path, False)
    size = sum(f["bytes"] for f in json.loads(index.header_json)["files"].values())
    starts = rng.integers(0, tokens_n - 300, size=queries_n)
    grams = np.concatenate([ids[s : s + 4] for s in starts])
    gram_offsets = np.arange(0, 4 * queries_n + 1, 4, dtype=np.uint64)
    t = time.perf_counter(); index.count_batch(grams, gram_offsets, 1); count_s = time.perf_counter() - t
    q = np.concatenate([ids[s : s + 256] for s in starts[:200]])
    q_offsets = np.arange(0, 256 * 200 + 1, 256, dtype=np.uint64)
    t = time.perf_counter(); index.matching_statistics(q, q_offsets, 1); ms_s = time.perf_counter() - t
print(json.dumps({"bytes_per_token": size / tokens_n, "count_per_s": queries_n / count_s,
                  "ms_tokens_per_s": q.size / ms_s}))
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--build", action="append", required=True, help="NAME=DIR holding the memscan package")
    parser.add_argument("--tokens", type=int, default=20_000_000)
    parser.add_argument("--queries", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    builds = dict(b.split("=", 1) for b in args.build)
    runs: dict[str, list[dict]] = {name: [] for name in builds}
    with tempfile.TemporaryDirectory() as cwd:
        for _ in range(args.rounds):
            for name, path in builds.items():
                code = f"import sys; sys.path.insert(0, {path!r})\n" + WORKER
                command = [sys.executable, "-c", code, str(args.tokens), str(args.queries)]
                out = subprocess.run(command, capture_output=True, text=True, check=True, cwd=cwd)
                runs[name].append(json.loads(out.stdout))
    first = next(iter(builds))
    medians = {name: {k: statistics.median(r[k] for r in rs) for k in rs[0]} for name, rs in runs.items()}
    base = medians[first]
    print(
        f"{args.tokens:,} tokens, {args.queries:,} 4-gram counts, 200 x 256-token matching statistics, "
        f"1 thread, median of {args.rounds}"
    )
    print(f"| build | bytes/token | count/s | matching-statistics tokens/s | count vs {first} | m.s. vs {first} |")
    print("|---|---|---|---|---|---|")
    for name, m in medians.items():
        print(
            f"| {name} | {m['bytes_per_token']:.2f} | {m['count_per_s']:,.0f} | {m['ms_tokens_per_s']:,.0f} | "
            f"{m['count_per_s'] / base['count_per_s']:.2f}x | {m['ms_tokens_per_s'] / base['ms_tokens_per_s']:.2f}x |"
        )


if __name__ == "__main__":
    main()
