"""Peak memory of one GA+Mismatch update: the random-completion term a micro-batch at a
time (memscan's way) against all K completions of a micro-batch in one pass (before).

One process, side by side: the model, a micro-batch of forget sequences and a retain
micro-batch of random token ids (memory does not depend on the text), then the resident
peak above the loaded model's of (a) the one-pass term alone and (b) memscan's whole
update (ascent, KL and the completions a micro-batch at a time); peaks are reset
between the two (`memscan.memory`, Linux).

    python benches/bench_mismatch_memory.py [--model smollm2-135m] [--tokens 200] [--micro-batch 4]
"""

from __future__ import annotations

import argparse

import numpy as np

from memscan import memory
from memscan.model.loading import load_model
from memscan.model.training import sequence_mean_ce, train_in_fp32
from memscan.unlearn.mismatch import Mismatch, mismatched
from memscan.unlearn.phase import TrainingData, Update


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--tokens", type=int, default=200)
    parser.add_argument("--micro-batch", type=int, default=4)
    args = parser.parse_args()

    loaded = load_model(args.model, "cpu")
    train_in_fp32(loaded)
    rng = np.random.default_rng(0)
    vocab = loaded.model.get_output_embeddings().weight.shape[0]

    def sequences(count: int) -> list[np.ndarray]:
        return [rng.integers(0, vocab, args.tokens).astype(np.uint32) for _ in range(count)]

    forget, retain = sequences(args.micro_batch), sequences(2 * args.micro_batch)
    phase = Mismatch(seed=0)
    phase.reference_model(loaded)  # the frozen copy, made before any peak is read
    memory.reset_peaks()
    base = memory.peak_rss_mib()

    completions, starts = mismatched(forget, retain, phase.completions_rng(0, 0))
    sequence_mean_ce(loaded, completions, starts).mean().backward()
    loaded.model.zero_grad(set_to_none=True)
    one_pass = memory.peak_rss_mib() - base

    memory.reset_peaks()
    phase.gradient(loaded, Update.whole(0, [list(range(len(forget)))]), TrainingData(forget, retain))
    update = memory.peak_rss_mib() - base
    print(f"{args.model}: vocabulary {vocab}, {len(completions)} completions of {args.tokens} tokens")
    print(f"  random-completion term in one pass:        +{one_pass / 1024:.2f} GiB above the loaded model")
    print(f"  whole update, a micro-batch at a time:     +{update / 1024:.2f} GiB")


if __name__ == "__main__":
    main()
