"""What DPD's sampled EL_n costs, against greedy EL_n and against sampling without caches.

Greedy EL_n reuses one continuation for every later prefix it reproduces (few generations
on a memorized sequence); a DPD draw serves only its own prefix, so `--score el_dpd`
generates T - n continuations per sequence. They start from the sequence's KV cache
(`sampled_continuations_of_prefixes`); the baseline prefills every prompt, as one
`generate` per prefix does. All three run in this process on the same KJV passages,
alternately (a load on the machine falls on all alike), the two sampled ones with one seed.

    python benches/bench_dpd_el.py [--model smollm2-135m] [--sequences 4] [--tokens 200]
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from bench_model_scores import kjv_passages
from common import alternated_best
from memscan.model.forward import DPD_LAMBDA, DPD_TOP_K
from memscan.model.generation import sampled, sampled_continuations_of_prefixes
from memscan.model.loading import load_model
from memscan.model.memorization import MemorizationOptions, memorization_table

N = 10


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--sequences", type=int, default=4)
    parser.add_argument("--tokens", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()

    loaded = load_model(args.model, "cpu")
    passages = kjv_passages(loaded, args.sequences, args.tokens)
    prefixes = [list(range(1, len(s) - N + 1)) for s in passages]
    batch = MemorizationOptions().generation_batch_size
    ids = [str(i) for i in range(len(passages))]

    def greedy_el():
        return memorization_table(loaded, ids, passages, MemorizationOptions(n=N, k=0))

    def cached():
        return sampled_continuations_of_prefixes(loaded, passages, prefixes, 0, batch)

    def prefilled():
        prompts = [s[:p] for s, ps in zip(passages, prefixes) for p in ps]
        lengths = [len(s) - p for s, ps in zip(passages, prefixes) for p in ps]
        return sampled(loaded, prompts, lengths, 1 / DPD_LAMBDA, 0, batch, top_k=DPD_TOP_K)

    runs = {"greedy EL_n": greedy_el, "DPD EL_n, from caches": cached, "DPD EL_n, prompts prefilled": prefilled}
    best = alternated_best(runs, args.repeats)
    table = memorization_table(loaded, ids, passages, MemorizationOptions(n=N, k=0, dpd_seed=0, dpd_el=True))
    generations = sum(map(len, prefixes))
    print(
        f"{args.model}, {len(passages)} sequences of {args.tokens} tokens, {generations} prefixes, {torch.get_num_threads()} threads"
    )
    print(
        f"mean EL_{N}: greedy {np.mean(table.column(f'el_{N}').to_numpy()):.3f}, DPD {np.mean(table.column(f'el_{N}_dpd').to_numpy()):.3f}"
    )
    print(f"| run | best of {args.repeats} | per sequence | against prefilled |")
    print("|---|---|---|---|")
    for name in runs:
        per = best[name] / len(passages)
        print(
            f"| {name} | {best[name]:.1f} s | {per:.1f} s | {best['DPD EL_n, prompts prefilled'] / best[name]:.2f}x |"
        )


if __name__ == "__main__":
    main()
