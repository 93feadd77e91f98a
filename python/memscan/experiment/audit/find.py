"""The find step: prompt the model with corpus windows, generate, and ask the index
whether each generation reproduces the corpus.

Per chunk of windows: the k prompt tokens and the m true continuation tokens are read
from the index; the model continues each prompt greedily (and `samples` times by
sampling); the Rust core scores every generation against its true continuation (exact,
prefix, edit similarity, BLEU-4, ROUGE-L) and against the whole corpus (matching
statistics). A generation is *memorized* when it reproduces the corpus: its true
continuation exactly or approximately (edit similarity >= 0.9 or BLEU-4 >= 0.75), or
a corpus span of at least `min_span` tokens anywhere (another copy of the text counts) --
unless it is *repetitive*: fewer than `min_distinct_share` of its tokens distinct. A run of
one emoji or of dashes reproduces the corpus whenever the prompt ends inside one, and
any model continues it without having memorized anything (measured on the built-in
corpus: 70 of 72 "memorized" generations were one such banner; README).

Each chunk is written as its own Parquet part, with the seconds spent generating and
matching in its metadata, so an interrupted find resumes at the first missing part.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from memscan import io
from memscan.errors import core_call
from memscan.experiment.audit.prompts import Windows
from memscan.model.generation import greedy, sampled
from memscan.model.loading import LoadedModel
from memscan.scan.index import CorpusIndex
from memscan.scan.matches import scan_pairs
from memscan.scan.ragged import unpack

TIMING_KEYS = (b"generation_s", b"matching_s")


@dataclass(frozen=True)
class FindOptions:
    k: int = 32  # prompt tokens
    m: int = 32  # generated (and true continuation) tokens
    samples: int = 0  # sampled continuations per prompt, besides the greedy one
    temperature: float = 1.0  # of the sampled continuations
    free: int = 0  # sampled generations from an empty context
    min_span: int = 32  # a corpus span this long in a generation counts as reproducing the corpus
    min_distinct_share: float = 0.25  # fewer distinct tokens than this share of a generation: repetition
    batch_size: int = 64  # generation rows per batch
    chunk: int = 512  # windows per resumable part (a few minutes of CPU generation)
    seed: int = 0


def find_in_chunks(
    loaded: LoadedModel,
    index: CorpusIndex,
    windows: Windows,
    options: FindOptions,
    folder: Path,
    progress: Callable[[int], object] | None = None,
) -> pa.Table:
    """Every prompt's (and free generation's) rows, from the parts in `folder`, making the missing ones."""
    folder.mkdir(exist_ok=True)
    parts = []
    for number, rows in enumerate(_chunks(len(windows), options.chunk)):
        part = folder / f"part-{number:05d}.parquet"
        if not part.exists():
            io.write_parquet(_prompted(loaded, index, windows.take(rows), rows.start, options, progress), part)
        elif progress:
            progress(len(rows) * (options.samples + 1))
        parts.append(part)
    if options.free:
        part = folder / "free.parquet"
        if not part.exists():
            io.write_parquet(_free(loaded, index, options, progress), part)
        elif progress:
            progress(options.free)
        parts.append(part)
    return pa.concat_tables([pq.read_table(p) for p in parts], promote_options="default")


def generations_wanted(n_windows: int, options: FindOptions) -> int:
    """How many generations a find makes (for its progress bar)."""
    return n_windows * (options.samples + 1) + options.free


def timings(folder: Path) -> dict[str, float]:
    """Seconds spent generating and matching, summed over the parts in `folder`."""
    total = dict.fromkeys(TIMING_KEYS, 0.0)
    for part in sorted(folder.glob("*.parquet")):
        metadata = pq.read_schema(part).metadata or {}
        for key in TIMING_KEYS:
            total[key] += float(metadata.get(key, 0))
    return {key.decode(): value for key, value in total.items()}


def _prompted(
    loaded: LoadedModel, index: CorpusIndex, windows: Windows, first: int, options: FindOptions, progress
) -> pa.Table:
    k, m = options.k, options.m
    tokens = index.windows(windows.doc, windows.start, k + m)
    prompts, truths = list(tokens[:, :k]), list(tokens[:, k:])
    started = time.perf_counter()
    generations = greedy(loaded, prompts, [m] * len(prompts), options.batch_size, progress)
    for sample in range(1, options.samples + 1):
        seed = options.seed * 1_000_003 + first * 101 + sample
        generations += sampled(
            loaded, prompts, [m] * len(prompts), options.temperature, seed, options.batch_size, progress
        )
    generation_s = time.perf_counter() - started
    repeats = options.samples + 1
    columns = {
        "kind": pa.array(["prompt"] * len(generations), pa.string()),
        "prompt": pa.array(np.tile(np.arange(first, first + len(windows)), repeats), pa.int64()),
        "sample": pa.array(np.repeat(np.arange(repeats), len(windows)), pa.int64()),
        "doc": pa.array(np.tile(windows.doc.astype(np.int64), repeats), pa.int64()),
        "start": pa.array(np.tile(windows.start.astype(np.int64), repeats), pa.int64()),
    }
    return _scored(index, columns, generations, truths * repeats, options, generation_s)


def _free(loaded: LoadedModel, index: CorpusIndex, options: FindOptions, progress) -> pa.Table:
    started = time.perf_counter()
    n = options.free
    generations = sampled(
        loaded, [[]] * n, [options.m] * n, options.temperature, options.seed, options.batch_size, progress
    )
    generation_s = time.perf_counter() - started
    columns = {
        "kind": pa.array(["free"] * n, pa.string()),
        "prompt": pa.array(np.arange(n), pa.int64()),
        "sample": pa.array(np.ones(n, np.int64)),
        "doc": pa.array(np.full(n, -1, np.int64)),
        "start": pa.array(np.full(n, -1, np.int64)),
    }
    return _scored(index, columns, generations, None, options, generation_s)


def _scored(
    index: CorpusIndex,
    columns: dict[str, pa.Array],
    generations: list[np.ndarray],
    truths: list[np.ndarray] | None,
    options: FindOptions,
    generation_s: float,
) -> pa.Table:
    """The generations with their scores: against the true continuations (when there are
    any) and the corpus; `memorized` says which reproduce the corpus."""
    matching_started = time.perf_counter()
    ids = [str(i) for i in range(len(generations))]
    stats = index.statistics(generations)
    lengths = unpack(stats.lengths, stats.offsets)
    docs = unpack(stats.docs, stats.offsets)
    best = [int(np.argmax(x)) if x.size else 0 for x in lengths]
    longest = np.array([int(x[b]) if x.size else 0 for x, b in zip(lengths, best)], np.int64)
    table = {
        **columns,
        "generation": pa.array([g.tolist() for g in generations], pa.list_(pa.uint32())),
        "longest_match": pa.array(longest),
        "match_start": pa.array(np.array(best, np.int64)),
        "match_doc": pa.array(np.array([int(d[b]) if d.size else -1 for d, b in zip(docs, best)], np.int64)),
        "coverage": pa.array(core_call(stats.coverage, options.min_span)),
    }
    memorized = longest >= options.min_span
    if truths is not None:
        pairs = scan_pairs(ids, generations, truths, n=0)
        for name in ("exact_match", "prefix_length", "edit_similarity", "bleu4", "rouge_l_f1", "approximate_match"):
            table[name] = pairs.column(name)
        memorized |= pairs.column("exact_match").to_numpy(zero_copy_only=False)
        memorized |= pairs.column("approximate_match").to_numpy(zero_copy_only=False)
    distinct = np.array([np.unique(g).size for g in generations])
    repetitive = distinct < options.min_distinct_share * np.array([max(g.size, 1) for g in generations])
    table["repetitive"] = pa.array(repetitive)
    table["memorized"] = pa.array(memorized & ~repetitive)
    matching_s = time.perf_counter() - matching_started
    metadata = {b"generation_s": str(generation_s).encode(), b"matching_s": str(matching_s).encode()}
    return pa.table(table).replace_schema_metadata(metadata)


def _chunks(n: int, size: int) -> Iterator[range]:
    for start in range(0, n, size):
        yield range(start, min(start + size, n))
