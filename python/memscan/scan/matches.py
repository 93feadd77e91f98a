"""Per-sequence scanning: free generations against a corpus index, and aligned
(generation, reference) pairs. Each returns one row per input sequence, keyed by its id."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import numpy as np
import pyarrow as pa

from memscan.errors import UserError, core_call
from memscan.scan.index import CorpusIndex
from memscan.scan.ragged import unpack
from memscan.scan.scores import ngram_overlap, pair_scores

# Work per Rust call, so that progress moves and Ctrl-C is heard within about a second.
INDEX_CHUNK_TOKENS = 1 << 18
PAIR_CHUNK_CELLS = 1 << 28
# Pairs whose token counts multiply past this are refused (about half a minute of edit distance and LCS each).
MAX_PAIR_CELLS = 1 << 34
PAIR_COLUMNS = (
    "exact_match",
    "prefix_length",
    "positional_match",
    "edit_similarity",
    "bleu4",
    "rouge_l_f1",
    "rouge_l_recall",
    "approximate_match",
)

SPAN_TYPE = pa.list_(pa.struct([("start", pa.int64()), ("length", pa.int64()), ("doc", pa.int64())]))


def scan_against_index(
    index: CorpusIndex,
    ids: Sequence[str],
    queries: Sequence[np.ndarray],
    k: int = 32,
    threads: int | None = None,
    progress: Callable[[int], object] | None = None,
) -> pa.Table:
    """Matching statistics, coverage by corpus spans of >= k tokens, and attributions,
    in chunks of queries (`progress(n)` is told of each; Ctrl-C is heard between them).

    Columns: id, n_tokens, coverage, longest_match, mean_match, n_spans, top_doc (the
    document whose spans cover most tokens, -1 if none), top_doc_id, spans, match_lengths.
    """
    if k < 1:
        raise UserError("k must be at least 1")
    index.check_ids(queries, ids)
    names = index.documents().column("id").to_pylist()
    coverage: list[float] = []
    per_query: list[list[dict]] = []
    per_lengths: list[np.ndarray] = []
    for chunk in _chunks([q.size for q in queries], INDEX_CHUNK_TOKENS):
        stats = index.statistics([queries[i] for i in chunk], threads)
        coverage.extend(core_call(stats.coverage, k).tolist())
        spans = core_call(stats.spans, k)
        found: list[list[dict]] = [[] for _ in chunk]
        for q, start, length, doc in zip(
            spans.query.tolist(), spans.start.tolist(), spans.length.tolist(), spans.doc.tolist()
        ):
            found[q].append({"start": start, "length": length, "doc": doc})
        per_query.extend(found)
        per_lengths.extend(unpack(stats.lengths, stats.offsets))
        if progress:
            progress(len(chunk))
    top_docs = [_top_doc(s) for s in per_query]
    return pa.table(
        {
            "id": pa.array(list(ids), pa.string()),
            "n_tokens": pa.array([q.size for q in queries], pa.int64()),
            "coverage": pa.array(coverage, pa.float64()),
            "longest_match": pa.array([int(m.max()) if m.size else 0 for m in per_lengths], pa.int64()),
            "mean_match": pa.array([float(m.mean()) if m.size else 0.0 for m in per_lengths], pa.float64()),
            "n_spans": pa.array([len(s) for s in per_query], pa.int64()),
            "top_doc": pa.array(top_docs, pa.int64()),
            "top_doc_id": pa.array([names[d] if d >= 0 else None for d in top_docs], pa.string()),
            "spans": pa.array(per_query, SPAN_TYPE),
            "match_lengths": pa.array([m.tolist() for m in per_lengths], pa.list_(pa.uint32())),
        }
    )


def _top_doc(spans: list[dict]) -> int:
    if not spans:
        return -1
    covered: dict[int, int] = {}
    for s in spans:
        covered[s["doc"]] = covered.get(s["doc"], 0) + s["length"]
    return max(covered, key=lambda d: (covered[d], -d))


def scan_pairs(
    ids: Sequence[str],
    generations: Sequence[np.ndarray],
    references: Sequence[np.ndarray],
    n: int = 10,
    threads: int | None = None,
    progress: Callable[[int], object] | None = None,
) -> pa.Table:
    """Every pair score, plus OVERLAP_n (n = 0 leaves it out), in chunks of pairs
    (`progress(n)` is told of each; Ctrl-C is heard between them)."""
    if n and (short := next((i for i, g in enumerate(generations) if g.size < n), None)) is not None:
        raise UserError(
            f"sequence {ids[short]!r}: the generation has {generations[short].size} tokens, fewer than n = {n} "
            "(pass a smaller --n, or --n 0 to skip the n-gram overlap)"
        )
    cells = [g.size * r.size for g, r in zip(generations, references)]
    if (large := next((i for i, c in enumerate(cells) if c > MAX_PAIR_CELLS), None)) is not None:
        raise UserError(
            f"sequence {ids[large]!r}: {generations[large].size} x {references[large].size} tokens is too long to "
            f"align (edit distance and ROUGE-L take time in the product, at most {MAX_PAIR_CELLS:.1e}); "
            "score shorter pieces, or match it against an index with --index"
        )
    columns: dict[str, list[np.ndarray]] = {name: [] for name in PAIR_COLUMNS}
    overlaps: list[np.ndarray] = []
    for chunk in _chunks(cells, PAIR_CHUNK_CELLS):
        gens, refs = [generations[i] for i in chunk], [references[i] for i in chunk]
        scores = pair_scores(gens, refs, threads)
        for name, parts in columns.items():
            parts.append(getattr(scores, name))
        if n:
            overlaps.append(ngram_overlap(gens, refs, n, threads))
        if progress:
            progress(len(chunk))
    table = {
        "id": pa.array(list(ids), pa.string()),
        "n_generation_tokens": pa.array([g.size for g in generations], pa.int64()),
        "n_reference_tokens": pa.array([r.size for r in references], pa.int64()),
        **{name: _joined(parts) for name, parts in columns.items()},
    }
    if n:
        table[f"overlap_{n}"] = _joined(overlaps)
    return pa.table(table)


def _joined(parts: list[np.ndarray]) -> pa.Array:
    return pa.array(np.concatenate(parts)) if parts else pa.array([], pa.float64())


def _chunks(costs: Sequence[int], budget: int) -> Iterator[range]:
    """Consecutive ranges of items whose costs add up to about `budget` (at least one item each)."""
    start, total = 0, 0
    for i, cost in enumerate(costs):
        if i > start and total + cost > budget:
            yield range(start, i)
            start, total = i, 0
        total += cost
    if start < len(costs):
        yield range(start, len(costs))
