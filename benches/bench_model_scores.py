"""MA + EL_10 with a real model: memscan's batched path against Jang et al.'s reference loops.

The reference computes MA with one forward pass per prefix and EL_n with one
`generate` call per prefix, one sequence at a time. memscan computes MA in one
teacher-forced pass per batch and EL_n from greedy continuations decoded with
continuous batching that reuse a continuation wherever greedy decoding vouches for it.

KJV passages are memorized to three levels first (`--repeats 0,2,8`: passage i is
fine-tuned on repeats[i % 3] times), so the table gives memscan's time per sequence at
each level of MA. The reference loop runs in full on `--reference-sequences` of them
(spread over the levels); every continuation it generates is checked against the one
memscan used, and its mean time per sequence gives the ratio (the loop's cost does not
depend on what the model memorized: it generates T - p tokens for every prefix p).
Both run in this process, on the same model and data.

    python benches/bench_model_scores.py [--model smollm2-135m] [--sequences 32] [--tokens 200]
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from memscan.experiment.implant import implant
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
    parser.add_argument("--repeats", default="0,2,8", help="fine-tuning passes per memorization level")
    parser.add_argument("--implant-lr", type=float, default=1e-4)
    parser.add_argument(
        "--reference-sequences", type=int, default=4, help="sequences the generate loop runs on in full"
    )
    parser.add_argument("--device", default=None)
    parser.add_argument("--batch-size", type=int, default=128, help="decoding slots")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    loaded = load_model(args.model, args.device)
    seqs = kjv_passages(loaded, args.sequences, args.tokens)
    n, T = args.n, args.tokens
    sync = torch.cuda.synchronize if loaded.device.type == "cuda" else (lambda: None)
    levels = [int(r) for r in args.repeats.split(",")]
    level_of = [i % len(levels) for i in range(len(seqs))]
    implant(loaded, seqs, [levels[g] for g in level_of], lr=args.implant_lr)
    loaded.model.eval()

    def memscan(picked: list[int]):
        """MA + EL_n of seqs[picked], timed: (seconds, MA per sequence, EL, continuations)."""
        sync()
        start = time.perf_counter()
        stats = teacher_forced(loaded, [seqs[i] for i in picked], batch_size=8)
        prefixes = [list(range(1, T - n + 1))] * len(picked)  # Jang et al.: prefix lengths 1..T-n
        found = continuations_of_prefixes(
            loaded, [seqs[i] for i in picked], prefixes, [s.hits for s in stats], batch_size=args.batch_size
        )
        el = extraction_likelihood([seqs[i] for i in picked], found.continuations, found.owner, found.prefix, n)
        sync()
        return time.perf_counter() - start, stats, el, found

    # memscan, one call per level (the 32 sequences' time is the sum)
    ma, el = np.zeros(len(seqs)), np.zeros(len(seqs))
    hits, by_key, per_level, generated = {}, {}, [], 0
    for g, repeats in enumerate(levels):
        picked = [i for i in range(len(seqs)) if level_of[i] == g]
        seconds, stats, level_el, found = memscan(picked)
        ma[picked], el[picked] = [s.memorization_accuracy for s in stats], level_el
        hits.update({i: s.hits for i, s in zip(picked, stats)})
        by_key.update({(picked[int(o)], int(p)): c for o, p, c in zip(found.owner, found.prefix, found.continuations)})
        generated += found.n_generated
        per_level.append(
            {
                "repeats": repeats,
                "sequences": len(picked),
                "mean_ma": float(ma[picked].mean()),
                "mean_el": float(np.mean(level_el)),
                "generated": found.n_generated,
                "seconds": seconds,
                "seconds_per_sequence": seconds / len(picked),
                "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
            }
        )
        print(json.dumps(per_level[-1]), flush=True)
    fast_seconds = sum(row["seconds"] for row in per_level)

    # reference: MA by one forward per prefix
    ma_sample = list(range(min(args.reference_sequences, len(seqs))))
    start = time.perf_counter()
    flips = 0
    for i in ma_sample:
        loop_hits, _ = next_token_loop(loaded, seqs[i])
        flips += int((loop_hits != hits[i]).sum())
    ma_ref_per_seq = (time.perf_counter() - start) / len(ma_sample)
    print(json.dumps({"reference_ma_seconds_per_sequence": ma_ref_per_seq, "ma_argmax_flips": flips}), flush=True)

    # reference: EL by one generate call per prefix, in full, on sequences of every level
    reference_rows, mismatches = [], 0
    for i in ma_sample:
        sync()
        t0 = time.perf_counter()
        differing = 0
        for p in range(1, T - n + 1):
            reference = generate_one(loaded, seqs[i][:p], T - p)
            differing += int(reference.tolist() != by_key[(i, p)].tolist())
        sync()
        mismatches += differing
        reference_rows.append(
            {
                "sequence": i,
                "ma": float(ma[i]),
                "seconds": time.perf_counter() - t0,
                "continuation_mismatches": differing,
            }
        )
        print(json.dumps(reference_rows[-1]), flush=True)
    el_ref_per_seq = float(np.mean([r["seconds"] for r in reference_rows]))
    ref_per_seq = el_ref_per_seq + ma_ref_per_seq
    for row in per_level:
        row["speedup"] = ref_per_seq / row["seconds_per_sequence"]
    result = {
        "model": args.model,
        "device": str(loaded.device),
        "threads": torch.get_num_threads(),
        "sequences": len(seqs),
        "tokens": T,
        "n": n,
        "batch_size": args.batch_size,
        "memscan_seconds": fast_seconds,
        "generated": generated,
        "prefixes": len(seqs) * (T - n),
        "mean_ma": float(ma.mean()),
        "mean_el": float(np.mean(el)),
        "per_level": per_level,
        "reference": reference_rows,
        "reference_seconds_per_sequence": ref_per_seq,
        "reference_ma_seconds_per_sequence": ma_ref_per_seq,
        "continuation_mismatches": mismatches,
        "ma_argmax_flips": flips,
        "speedup": ref_per_seq * len(seqs) / fast_seconds,
        "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
    }
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
