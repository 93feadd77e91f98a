"""MA + EL_10 with a real model: memscan's batched path against Jang et al.'s reference loops.

The reference computes MA with one forward pass per prefix and EL_n with one
`generate` call per prefix, one sequence at a time. memscan computes MA in one
teacher-forced pass per batch and EL_n from batched, left-padded greedy generation
that reuses a continuation wherever greedy decoding vouches for it.

The full reference for 32 sequences of 200 tokens is hours of CPU time (6 080
generate calls), so on CPU this script times the reference on a stratified sample
of (sequence, prefix) calls, checks that each sampled call gives exactly the tokens
memscan used, and extrapolates the reference's total from a least-squares fit of
call time against tokens generated. `--full-reference` runs every call instead
(do that on a GPU). Both run in this process, on the same model and data.

    python benches/bench_model_scores.py [--model smollm2-135m] [--sequences 32] [--tokens 200]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from memscan.model.forward import teacher_forced
from memscan.model.generation import continuations_of_prefixes
from memscan.model.loading import load_model
from memscan.scan.corpus import kjv_paragraphs
from memscan.scan.scores import extraction_likelihood
from reference_model import generate_one, next_token_loop


def kjv_passages(loaded, count: int, tokens: int, seed: int = 0) -> list[np.ndarray]:
    records = list(kjv_paragraphs())
    encoded = loaded.encode([r.text for r in records])
    pool = [np.asarray(e[:tokens], np.uint32) for e in encoded if len(e) >= tokens]
    order = np.random.default_rng(seed).permutation(len(pool))
    return [pool[i] for i in order[:count]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--sequences", type=int, default=32)
    parser.add_argument("--tokens", type=int, default=200)
    parser.add_argument("--n", type=int, default=10)
    parser.add_argument(
        "--sample", type=int, default=48, help="reference generate calls to time (stratified by prefix length)"
    )
    parser.add_argument("--full-reference", action="store_true")
    parser.add_argument("--device", default=None)
    parser.add_argument("--batch-size", type=int, default=64, help="generation rows per batch")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    loaded = load_model(args.model, args.device)
    seqs = kjv_passages(loaded, args.sequences, args.tokens)
    n, T = args.n, args.tokens
    sync = torch.cuda.synchronize if loaded.device.type == "cuda" else (lambda: None)

    # memscan: MA + EL_n, batched
    sync()
    start = time.perf_counter()
    stats = teacher_forced(loaded, seqs, batch_size=8)
    sync()
    ma_seconds = time.perf_counter() - start
    prefixes = [list(range(1, T - n + 1))] * len(seqs)  # Jang et al.: prefix lengths 1..T-n
    found = continuations_of_prefixes(loaded, seqs, prefixes, [s.hits for s in stats], batch_size=args.batch_size)
    el = extraction_likelihood(seqs, found.continuations, found.owner, found.prefix, n)
    sync()
    fast_seconds = time.perf_counter() - start
    calls = len(seqs) * (T - n)
    print(
        f"memscan: MA {ma_seconds:.1f} s, MA + EL_{n} {fast_seconds:.1f} s; {found.n_generated} of {calls} prefixes generated, the rest reused"
    )

    # reference: MA by one forward per prefix, on a sample of sequences
    ma_sample = seqs[: max(1, min(4, len(seqs)))]
    start = time.perf_counter()
    flips = 0
    for seq, s in zip(ma_sample, stats):
        hits, gaps = next_token_loop(loaded, seq)
        flips += int((hits != s.hits).sum())
    ma_ref_per_seq = (time.perf_counter() - start) / len(ma_sample)

    # reference: EL by one generate call per prefix
    rng = np.random.default_rng(1)
    if args.full_reference:
        sample = [(i, p) for i in range(len(seqs)) for p in range(1, T - n + 1)]
    else:
        strata = np.array_split(np.arange(1, T - n + 1), args.sample)
        sample = [(int(rng.integers(len(seqs))), int(rng.choice(stratum))) for stratum in strata]
    by_key = {(int(o), int(p)): c for o, p, c in zip(found.owner, found.prefix, found.continuations)}
    timings, mismatches = [], 0
    for i, p in sample:
        sync()
        t0 = time.perf_counter()
        reference = generate_one(loaded, seqs[i][:p], T - p)
        sync()
        timings.append((T - p, time.perf_counter() - t0))
        mismatches += int(reference.tolist() != by_key[(i, p)].tolist())
    lengths, seconds = np.array(timings).T
    slope, intercept = np.polyfit(lengths, seconds, 1)
    all_lengths = np.array([T - p for _ in seqs for p in range(1, T - n + 1)])
    el_ref_total = float(seconds.sum()) if args.full_reference else float((intercept + slope * all_lengths).sum())
    ref_total = el_ref_total + ma_ref_per_seq * len(seqs)
    result = {
        "model": args.model,
        "device": str(loaded.device),
        "sequences": len(seqs),
        "tokens": T,
        "n": n,
        "memscan_seconds": fast_seconds,
        "memscan_ma_seconds": ma_seconds,
        "generated": found.n_generated,
        "prefixes": calls,
        "reference_seconds": ref_total,
        "reference_ma_seconds": ma_ref_per_seq * len(seqs),
        "reference_extrapolated": not args.full_reference,
        "reference_calls_timed": len(sample),
        "continuation_mismatches": mismatches,
        "ma_argmax_flips": flips,
        "speedup": ref_total / fast_seconds,
        "mean_el": float(np.mean(el)),
        "mean_ma": float(np.mean([s.memorization_accuracy for s in stats])),
    }
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
