"""How the implant's learning rate trades memorization against general ability, per model.

Implants the sweep's first forget set (seed 0, 8 KJV passages of 64 tokens, repeats
1/2/4/8) at each given rate, starting from the pretrained weights every time, and prints
mean MA on the forget set and on the unseen set and perplexity on 16 LAMBADA novel
passages. The figures behind memscan.experiment.sweep.config.BUILTIN_IMPLANT_LR:

    python docs/results/implant_rate.py smollm2-135m 1e-4 2e-5
    python docs/results/implant_rate.py gemma3-270m 1e-4 2e-5 1e-5 5e-6
"""

import sys
import time

import torch

from memscan.eval import EvalOptions, evaluate_tasks, load_task
from memscan.experiment.implant import implant, spread_repeats
from memscan.experiment.sets import PassageSizes, kjv_passages
from memscan.model.loading import load_model
from memscan.model.memorization import MemorizationOptions, memorization_table
from memscan.model.weights import cpu_copy, load_weights


def main(model: str, rates: list[float]) -> None:
    loaded = load_model(model, "cpu")
    sets = kjv_passages(loaded, PassageSizes(tokens=64, forget=8, unseen=32, heldout=16), seed=0)
    novels = load_task("novels")

    def report(label: str) -> None:
        forget, unseen = (
            memorization_table(loaded, *s, MemorizationOptions(n=0, k=0)).column("ma").to_numpy()
            for s in (sets.forget, sets.unseen)
        )
        ppl = evaluate_tasks(loaded, [novels], EvalOptions(limit=16, seed=0, progress=False)).primary()[
            "novels_perplexity"
        ]
        print(
            f"{model} {label}: forget MA {forget.mean():.3f}, unseen MA {unseen.mean():.3f}, novels perplexity {ppl:.1f}",
            flush=True,
        )

    pretrained = cpu_copy(loaded.model)
    report("pretrained")
    for rate in rates:
        load_weights(loaded.model, pretrained)
        torch.manual_seed(0)
        started = time.perf_counter()
        implant(loaded, sets.forget[1], spread_repeats(8), rate)
        report(f"implant lr {rate:g} ({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main(sys.argv[1], [float(r) for r in sys.argv[2:]])
