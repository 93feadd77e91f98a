"""The attacks' scoring pass: the full teacher-forced statistics against loss and MA alone.

MIAU scores every candidate's neighbours, and `zscore_swap` every sequence's swapped
copies, by their loss (and MA): `every_target` computes only the target log-probabilities
and hits, while `teacher_forced` also makes Min-K%++'s mean and deviation and DPD's top-k
softmax over the whole vocabulary at every position. Both run in this process, on the same
KJV passages, alternately (so that a load on the machine falls on both alike); the script
checks that they give the same loss and MA before timing.

    python benches/bench_attack_pass.py [--model smollm2-135m] [--sequences 32] [--tokens 200]
"""

from __future__ import annotations

import argparse

import torch

from bench_model_scores import kjv_passages
from common import alternated_best
from memscan.model.forward import every_target, mean_logprob, teacher_forced
from memscan.model.loading import load_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--sequences", type=int, default=32)
    parser.add_argument("--tokens", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    loaded = load_model(args.model, "cpu")
    passages = kjv_passages(loaded, args.sequences, args.tokens)
    full = teacher_forced(loaded, passages)
    light = every_target(loaded, passages)
    assert [mean_logprob(lp) for lp, _ in light] == [-s.loss for s in full], "the two passes disagree on the loss"
    assert [h.mean() for _, h in light] == [s.memorization_accuracy for s in full], "the two passes disagree on MA"

    runs = {
        "teacher_forced": lambda: teacher_forced(loaded, passages),
        "every_target": lambda: every_target(loaded, passages),
    }
    best = alternated_best(runs, args.repeats)
    vocab = loaded.model.get_output_embeddings().weight.shape[0]
    print(
        f"{args.model} (vocabulary {vocab}), {len(passages)} sequences of {args.tokens} tokens, {torch.get_num_threads()} threads"
    )
    print(f"| pass | best of {args.repeats} | per sequence | speed-up |")
    print("|---|---|---|---|")
    for name in ("teacher_forced", "every_target"):
        per = best[name] / len(passages) * 1000
        print(f"| {name} | {best[name]:.2f} s | {per:.0f} ms | {best['teacher_forced'] / best[name]:.2f}x |")
    print("loss and MA identical: yes (checked)")


if __name__ == "__main__":
    main()
