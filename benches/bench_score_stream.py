"""`memscan score --index` end to end on many generations: wall time and peak memory of
the command (a child process each), for input sizes 10x apart, to show that memory is
bounded by one streamed part (SCAN_CHUNK sequences), not by the input.

Generations are KJV text: half copied spans of 48 words (long corpus matches), half the
same spans with their words shuffled (short ones). The index is the built-in KJV.

    python benches/bench_score_stream.py --sizes 10000 100000
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from memscan.scan.corpus import kjv_paragraphs

MEMSCAN = [sys.executable, "-m", "memscan.cli"]


def write_generations(path: Path, count: int, seed: int = 0) -> None:
    draw = random.Random(seed)
    words = " ".join(r.text or "" for r in kjv_paragraphs()).split()
    with open(path, "w", encoding="utf-8") as f:
        for i in range(count):
            start = draw.randrange(len(words) - 48)
            span = words[start : start + 48]
            if i % 2:
                draw.shuffle(span)
            f.write(json.dumps({"id": str(i), "text": " ".join(span)}) + "\n")


def run_child(args: list) -> tuple[float, float]:
    """Wall seconds and peak RSS (MiB) of one child command (its own rusage, from wait4)."""
    start = time.perf_counter()
    child = subprocess.Popen([*MEMSCAN, *map(str, args)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - start
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode:
        raise RuntimeError(f"memscan {' '.join(map(str, args))} failed ({child.returncode})")
    return seconds, usage.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        subprocess.run([*MEMSCAN, "index", "build", "kjv", "-o", root / "kjv.idx"], check=True, capture_output=True)
        print("| generations | input | wall | per 1 000 | peak RSS |")
        print("|---|---|---|---|---|")
        for size in sorted(args.sizes):
            gens = root / f"gens{size}.jsonl"
            write_generations(gens, size)
            out = root / f"scores{size}.parquet"
            seconds, peak = run_child(["score", gens, "--index", root / "kjv.idx", "-o", out, "--k", 32])
            mib = gens.stat().st_size / 2**20
            print(f"| {size:,} | {mib:.1f} MiB | {seconds:.1f} s | {1000 * seconds / size:.2f} s | {peak:,.0f} MiB |")


if __name__ == "__main__":
    main()
