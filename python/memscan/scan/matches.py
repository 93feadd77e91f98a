"""Per-sequence scanning: free generations against a corpus index, and aligned
(generation, reference) pairs. Each returns one row per input sequence, keyed by its id."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa

from memscan.errors import UserError, core_call
from memscan.scan.index import CorpusIndex
from memscan.scan.ragged import unpack
from memscan.scan.scores import ngram_overlap, pair_scores

SPAN_TYPE = pa.list_(pa.struct([("start", pa.int64()), ("length", pa.int64()), ("doc", pa.int64())]))


def scan_against_index(
    index: CorpusIndex, ids: Sequence[str], queries: Sequence[np.ndarray], k: int = 32, threads: int | None = None
) -> pa.Table:
    """Matching statistics, coverage by corpus spans of >= k tokens, and attributions.

    Columns: id, n_tokens, coverage, longest_match, mean_match, n_spans, top_doc (the
    document whose spans cover most tokens, -1 if none), top_doc_id, spans, match_lengths.
    """
    if k < 1:
        raise UserError("k must be at least 1")
    index.check_ids(queries, ids)
    stats = index.statistics(queries, threads)
    coverage = core_call(stats.coverage, k)
    spans = core_call(stats.spans, k)
    per_query: list[list[dict]] = [[] for _ in queries]
    for q, start, length, doc in zip(
        spans.query.tolist(), spans.start.tolist(), spans.length.tolist(), spans.doc.tolist()
    ):
        per_query[q].append({"start": start, "length": length, "doc": doc})
    top_docs = [_top_doc(s) for s in per_query]
    names = index.documents().column("id").to_pylist()
    per_lengths = unpack(stats.lengths, stats.offsets)
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
) -> pa.Table:
    """Every pair score, plus OVERLAP_n (n = 0 leaves it out)."""
    if n and (short := next((i for i, g in enumerate(generations) if g.size < n), None)) is not None:
        raise UserError(
            f"sequence {ids[short]!r}: the generation has {generations[short].size} tokens, fewer than n = {n} "
            "(pass a smaller --n, or --n 0 to skip the n-gram overlap)"
        )
    scores = pair_scores(generations, references, threads)
    columns = {
        "id": pa.array(list(ids), pa.string()),
        "n_generation_tokens": pa.array([g.size for g in generations], pa.int64()),
        "n_reference_tokens": pa.array([r.size for r in references], pa.int64()),
        "exact_match": pa.array(scores.exact_match),
        "prefix_length": pa.array(scores.prefix_length),
        "positional_match": pa.array(scores.positional_match),
        "edit_similarity": pa.array(scores.edit_similarity),
        "bleu4": pa.array(scores.bleu4),
        "rouge_l_f1": pa.array(scores.rouge_l_f1),
        "rouge_l_recall": pa.array(scores.rouge_l_recall),
        "approximate_match": pa.array(scores.approximate_match),
    }
    if n:
        columns[f"overlap_{n}"] = pa.array(ngram_overlap(generations, references, n, threads), pa.float64())
    return pa.table(columns)
