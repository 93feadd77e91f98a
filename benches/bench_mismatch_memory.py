"""Peak memory of one GA+Mismatch update against the two ways memscan computed it before:
all K random completions of a micro-batch in one pass, and the ascent and KL terms of a
micro-batch in one graph (the KL over the whole retain micro-batch at once).

Side by side in one run, each in a fresh process (the allocator keeps what a pass freed,
so a second measurement in one process reads the first's leftovers): the model, a
micro-batch of forget sequences and a retain micro-batch of random token ids (memory
does not depend on the text), then the resident peak above the loaded model's and its
frozen copy's (`memscan.memory`, Linux) of (a) the one-pass completion term alone, (b)
the ascent and batched KL terms in one backward and (c) memscan's whole update (ascent;
KL a retain sequence at a time; completions a micro-batch at a time).

    python benches/bench_mismatch_memory.py [--model smollm2-135m] [--tokens 200] [--micro-batch 4]
        [--parts one-pass one-graph update]   # Gemma-3-270M's one-pass term needs ~40 GiB
"""

from __future__ import annotations

import argparse
import subprocess
import sys

import numpy as np
import torch

from memscan import memory
from memscan.model.loading import load_model
from memscan.model.training import sequence_mean_ce, train_in_fp32
from memscan.unlearn.mismatch import RANDOM_COMPLETIONS, WEIGHTS, Mismatch, mismatched, prompt_tokens
from memscan.unlearn.phase import TrainingData, Update

PARTS = {
    "one-pass": "random-completion term in one pass",
    "one-graph": "ascent and batched KL in one graph",
    "update": "whole update, memscan's way",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--tokens", type=int, default=200)
    parser.add_argument("--micro-batch", type=int, default=4)
    parser.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS), help="the parts to measure")
    parser.add_argument("--part", choices=PARTS, help=argparse.SUPPRESS)  # one measurement, in a child process
    args = parser.parse_args()
    if args.part:
        print(measure(args))
        return
    shared = ["--model", args.model, "--tokens", str(args.tokens), "--micro-batch", str(args.micro_batch)]
    print(
        f"{args.model}: micro-batch {args.micro_batch} of {args.tokens} tokens, K = {RANDOM_COMPLETIONS} completions each"
    )
    for part in args.parts:
        child = subprocess.run(
            [sys.executable, __file__, *shared, "--part", part], capture_output=True, text=True, check=True
        )
        print(f"  {PARTS[part] + ':':<42} +{float(child.stdout.split()[-1]) / 1024:.2f} GiB above the loaded models")


def measure(args: argparse.Namespace) -> float:
    """The resident peak (MiB) of one part above the loaded model and its frozen copy."""
    loaded = load_model(args.model, "cpu")
    train_in_fp32(loaded)
    rng = np.random.default_rng(0)
    vocab = loaded.model.get_output_embeddings().weight.shape[0]

    def sequences(count: int) -> list[np.ndarray]:
        return [rng.integers(0, vocab, args.tokens).astype(np.uint32) for _ in range(count)]

    forget, retain = sequences(args.micro_batch), sequences(2 * args.micro_batch)
    phase = Mismatch(seed=0)
    reference = phase.reference_model(loaded)
    memory.reset_peaks()
    base = memory.peak_rss_mib()
    if args.part == "one-pass":
        completions, starts = mismatched(forget, retain, phase.completions_rng(0, 0))
        sequence_mean_ce(loaded, completions, starts).mean().backward()
    elif args.part == "one-graph":
        ids = torch.as_tensor(np.stack(retain[: args.micro_batch]).astype(np.int64))
        log_q = torch.log_softmax(loaded.model(input_ids=ids).logits.float(), -1)
        with torch.no_grad():
            log_p = torch.log_softmax(reference(input_ids=ids).logits.float(), -1)
        kl = torch.nn.functional.kl_div(log_q, log_p, log_target=True, reduction="none").sum(-1).mean()
        ascent = -sequence_mean_ce(loaded, forget, [prompt_tokens(s) for s in forget]).mean()
        w_bad, _, w_normal = WEIGHTS
        (w_bad * ascent + w_normal * kl).backward()
    else:
        phase.gradient(loaded, Update.whole(0, [list(range(len(forget)))]), TrainingData(forget, retain))
    return memory.peak_rss_mib() - base


if __name__ == "__main__":
    main()
