"""The audit's find step: where its time goes, and whether the index side scales.

    python benches/bench_audit.py model [--prompts 256]        # the built-in model on its corpus
    python benches/bench_audit.py scale [--tokens 1e9 --prompts 100000]

`model`: SmolLM2-135M on the built-in `transformers-configs` index (built into a
temporary folder first): the find step on `--prompts` seeded windows (32-token prompts,
32 generated tokens), giving prompts/s, generated tokens/s and the shares of time
spent generating and matching (as the audit records them per part).

`scale`: the index side alone on a synthetic corpus of `--tokens` tokens (Zipf ids in
1000-token documents, benches/common.py): drawing `--prompts` windows from the
document lengths, reading their tokens from the memory-mapped index, and the matching
statistics of as many 32-token generations (half copied from the corpus, half with
every fourth token changed). With the model's seconds per generation from the `model`
run (`--generation-s-per-prompt`), it prints the share matching would take of a find
at that scale.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))

from common import peak_rss_mib, zipf_corpus


def model_run(prompts: int, batch_size: int) -> None:
    from memscan.experiment.audit.find import FindOptions, find_in_chunks, timings
    from memscan.experiment.audit.prompts import sample_windows
    from memscan.model.loading import load_model
    from memscan.scan.pipeline import build_index
    from memscan.scan.tokenizer import load_tokenizer

    with tempfile.TemporaryDirectory() as tmp:
        index = build_index(["transformers-configs"], Path(tmp) / "idx", load_tokenizer("smollm2-135m"))
        loaded = load_model("smollm2-135m", "cpu")
        options = FindOptions(batch_size=batch_size)
        windows = sample_windows(index, prompts, options.k + options.m, options.seed)
        started = time.perf_counter()
        found = find_in_chunks(loaded, index, windows, options, Path(tmp) / "find")
        wall = time.perf_counter() - started
        spent = timings(Path(tmp) / "find")
    total = spent["generation_s"] + spent["matching_s"]
    print(f"index: {index.n_tokens} tokens, {index.n_documents} documents; {prompts} prompts, batch {batch_size}")
    print(
        f"find wall time {wall:.1f} s: {prompts / wall:.2f} prompts/s, {prompts * options.m / wall:.1f} generated tokens/s"
    )
    print(
        f"generation {spent['generation_s']:.1f} s ({spent['generation_s'] / total:.1%}), "
        f"matching {spent['matching_s']:.3f} s ({spent['matching_s'] / total:.2%}); "
        f"{spent['generation_s'] / prompts * 1000:.1f} ms generation per prompt"
    )
    print(f"memorized generations: {int(np.sum(found.column('memorized').to_numpy(zero_copy_only=False)))}")


def scale_run(tokens: int, prompts: int, generation_s_per_prompt: float | None) -> None:
    from memscan import _core
    from memscan.experiment.audit.prompts import sample_windows
    from memscan.scan.index import CorpusIndex

    with tempfile.TemporaryDirectory(dir=".") as tmp:
        started = time.perf_counter()
        corpus, offsets = zipf_corpus(tokens)
        writer = _core.IndexWriter(str(Path(tmp) / "idx"))
        writer.add_shard(corpus, offsets, None)
        writer.finish('{"tokenizer": null}')
        build_s = time.perf_counter() - started
        del corpus
        index = CorpusIndex.open(Path(tmp) / "idx", verify=False)
        started = time.perf_counter()
        windows = sample_windows(index, prompts, 64, seed=0)
        sample_s = time.perf_counter() - started
        started = time.perf_counter()
        rows = index.windows(windows.doc, windows.start, 64)
        read_s = time.perf_counter() - started
        generations = rows[:, 32:].copy()
        generations[1::2, ::4] = (generations[1::2, ::4] + 1) % 49151
        started = time.perf_counter()
        stats = index.statistics(list(generations))
        match_s = time.perf_counter() - started
        longest = stats.lengths.reshape(prompts, 32).max(axis=1)
    print(f"index: {tokens:.3g} tokens built in {build_s:.0f} s; peak memory {peak_rss_mib():.0f} MiB")
    print(f"drawing {prompts} windows: {sample_s:.2f} s; reading their tokens: {read_s:.2f} s")
    print(f"matching statistics of {prompts} generations of 32 tokens: {match_s:.2f} s ({prompts / match_s:.0f}/s)")
    print(
        f"copied generations matched in full: {np.mean(longest[0::2] == 32):.1%}; changed ones: {np.mean(longest[1::2] == 32):.1%}"
    )
    if generation_s_per_prompt:
        index_s = (sample_s + read_s + match_s) / prompts
        share = index_s / (index_s + generation_s_per_prompt)
        print(
            f"with {generation_s_per_prompt * 1000:.0f} ms generation per prompt, the index side is {share:.2%} of a find"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="part", required=True)
    model = sub.add_parser("model")
    model.add_argument("--prompts", type=int, default=256)
    model.add_argument("--batch-size", type=int, default=64)
    scale = sub.add_parser("scale")
    scale.add_argument("--tokens", type=float, default=1e8)
    scale.add_argument("--prompts", type=int, default=100_000)
    scale.add_argument("--generation-s-per-prompt", type=float, default=None)
    args = parser.parse_args()
    if args.part == "model":
        model_run(args.prompts, args.batch_size)
    else:
        scale_run(int(args.tokens), args.prompts, args.generation_s_per_prompt)


if __name__ == "__main__":
    main()
