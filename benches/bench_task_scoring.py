"""Scoring the utility tasks' answers three ways, side by side in one process, on the
same encoded items: the full teacher-forced pass, logits only where they are needed,
and that with each item's shared context computed once.

A task item is a context (a PubMedQA abstract runs to hundreds of tokens) and a short
continuation per choice. `teacher_forced` computes every position's logits and, per
position, min-k++ and DPD statistics over the whole vocabulary; the task scorers keep
the continuation's log-probabilities and hits. `target_scores` computes the logits of
the continuation's positions only (`logits_to_keep`) and nothing else.
`grouped_target_scores` passes the tokens an item's choices share through the model
once and continues every choice from that cache (here whatever the saving; the task
scorers share only where it halves the tokens). The script checks all three give the
same log-probabilities (1e-4) and hits.

    python benches/bench_task_scoring.py --model smollm2-135m --items 40 \\
        --tasks pubmedqa=../shared/paper-data/validation/pubmed_qa.csv hellaswag
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from memscan.eval.evaluate import resolve_tasks
from memscan.eval.scorers import encode_pairs
from memscan.eval.tasks import ChoiceItem
from memscan.model.forward import target_scores, teacher_forced
from memscan.model.loading import load_model
from memscan.model.shared_prefix import grouped_target_scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--tasks", nargs="+", default=["hellaswag", "piqa"])
    parser.add_argument("--items", type=int, default=40)
    args = parser.parse_args()
    loaded = load_model(args.model, "cpu")
    tasks, _ = resolve_tasks(args.tasks)
    results = []
    for task in tasks:
        items = [i for i in task.items if isinstance(i, ChoiceItem)][: args.items]
        pairs = [(ctx, choice) for item in items for ctx, choice in zip(item.contexts, item.choices)]
        encoded = encode_pairs(loaded, pairs)
        sequences, lengths = [ids for ids, _ in encoded], [m for _, m in encoded]

        started = time.perf_counter()
        full = teacher_forced(loaded, sequences, 8)
        full_seconds = time.perf_counter() - started
        started = time.perf_counter()
        kept = target_scores(loaded, sequences, lengths, 8)
        kept_seconds = time.perf_counter() - started

        started = time.perf_counter()
        sizes = [len(item.choices) for item in items]
        starts = np.cumsum([0, *sizes])
        grouped = grouped_target_scores(
            loaded,
            [sequences[a:b] for a, b in zip(starts, starts[1:])],
            [lengths[a:b] for a, b in zip(starts, starts[1:])],
            8,
            min_saving=1.0,  # share whatever the saving, to measure it
        )
        grouped_seconds = time.perf_counter() - started

        for stats, (logprobs, hits), (shared_logprobs, shared_hits), m in zip(
            full, kept, [s for g in grouped for s in g], lengths, strict=True
        ):
            np.testing.assert_allclose(logprobs, stats.logprobs[-m:], rtol=0, atol=1e-5)
            np.testing.assert_allclose(shared_logprobs, stats.logprobs[-m:], rtol=0, atol=1e-4)
            assert (hits == stats.hits[-m:]).all() and (shared_hits == stats.hits[-m:]).all()
        row = {
            "task": task.name,
            "pairs": len(pairs),
            "mean_tokens": float(np.mean([len(s) for s in sequences])),
            "mean_continuation": float(np.mean(lengths)),
            "teacher_forced_s": round(full_seconds, 2),
            "target_scores_s": round(kept_seconds, 2),
            "grouped_s": round(grouped_seconds, 2),
            "speedup": round(full_seconds / kept_seconds, 2),
            "grouped_speedup": round(full_seconds / grouped_seconds, 2),
            "grouped_vs_target_scores": round(kept_seconds / grouped_seconds, 2),
        }
        results.append(row)
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
