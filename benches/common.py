"""Shared pieces of the benchmarks: corpora, timing, peak memory."""

from __future__ import annotations

import resource
import time

import numpy as np

VOCAB = 49152  # SmolLM2's vocabulary, so that infini-gram can store tokens as u16
DOC_TOKENS = 1000


def zipf_corpus(n_tokens: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(tokens, offsets) of a synthetic corpus: Zipf(1.1)-distributed ids over the
    vocabulary (the unigram shape of real text, without its long repeats), in
    documents of 1000 tokens. Ids stay below 65535 for infini-gram's u16 format."""
    rng = np.random.default_rng(seed)
    tokens = np.empty(n_tokens, dtype=np.uint32)
    step = 1 << 24
    for start in range(0, n_tokens, step):
        end = min(start + step, n_tokens)
        tokens[start:end] = (rng.zipf(1.1, end - start) - 1) % (VOCAB - 1)
    n_docs = -(-n_tokens // DOC_TOKENS)
    offsets = np.minimum(np.arange(n_docs + 1, dtype=np.uint64) * DOC_TOKENS, n_tokens).astype(np.uint64)
    return tokens, offsets


def peak_rss_mib() -> float:
    """Peak resident memory of this process and of its finished children, in MiB."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, children) / 1024


def best_of(repeats: int, fn) -> float:
    """Fastest of `repeats` wall-clock timings of fn(), in seconds."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def alternated_best(runs: dict, repeats: int) -> dict[str, float]:
    """Fastest wall-clock seconds of each named run, the runs taking turns `repeats` times
    (so that a load on the machine falls on all of them alike)."""
    best = {name: float("inf") for name in runs}
    for _ in range(repeats):
        for name, fn in runs.items():
            start = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - start)
    return best
