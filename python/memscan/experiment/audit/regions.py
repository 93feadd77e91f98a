"""From memorized generations to a forget set: one sequence per memorized region.

A memorized generation points at corpus text: its own window (prompt + true
continuation) when it reproduces that continuation, otherwise the corpus span it
matched (located through the index). Overlapping places in a document merge into one
region; a region longer than `max_tokens` is cut into consecutive pieces. A piece every
span of `min_span` tokens of which is already in higher-ranked pieces is a copy (the
same licence header in a hundred files is one thing the model memorized): it joins the
group of the piece holding its first span and is listed as a copy; every piece with
text of its own is a sequence to forget. Ranking: exact reproduction first, then the longest corpus match,
edit similarity and extraction length.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from memscan.experiment.audit.find import FindOptions

PLACE_TYPE = pa.list_(pa.struct([("doc", pa.int64()), ("start", pa.int64()), ("end", pa.int64())]))
EVIDENCE = ("exact_match", "longest_match", "edit_similarity", "prefix_length", "bleu4", "rouge_l_f1")


@dataclass(frozen=True)
class Place:
    """Corpus text a generation reproduced: tokens start..end of document doc."""

    doc: int
    start: int
    end: int
    row: int  # the generation's row in the find table


def places_of(index, found: pa.Table, options: FindOptions) -> list[Place]:
    """Where each memorized generation of `found` points in the corpus."""
    rows = np.flatnonzero(found.column("memorized").to_numpy(zero_copy_only=False))
    own = _column(found, "exact_match", rows) | _column(found, "approximate_match", rows)
    picked = found.take(pa.array(rows, pa.int64())).select(
        ["doc", "start", "generation", "match_start", "longest_match"]
    )
    columns = {name: picked.column(name).to_pylist() for name in picked.column_names}
    places = []
    for i, (row, is_own) in enumerate(zip(rows.tolist(), own.tolist())):
        if is_own:
            start = columns["start"][i]
            places.append(Place(columns["doc"][i], start, start + options.k + options.m, row))
            continue
        begin = columns["match_start"][i]
        span = np.asarray(columns["generation"][i][begin : begin + columns["longest_match"][i]], np.uint32)
        located = index.locate(span, limit=1)
        if located:
            doc, offset = located[0]
            places.append(Place(doc, offset, offset + span.size, row))
    return places


def _column(table: pa.Table, name: str, rows: np.ndarray) -> np.ndarray:
    if name not in table.column_names:
        return np.zeros(rows.size, bool)
    return np.asarray(table.column(name).take(pa.array(rows)).fill_null(False).to_numpy(zero_copy_only=False))


@dataclass
class Regions:
    """The memorized regions, ranked; `table` is what regions.parquet holds."""

    table: pa.Table
    min_span: int

    @property
    def ids(self) -> list[str]:
        return self.table.column("region").to_pylist()

    @property
    def sequences(self) -> list[np.ndarray]:
        return [np.asarray(t, np.uint32) for t in self.table.column("tokens").to_pylist()]

    def assign(self, places: Sequence[Place], tokens: Sequence[np.ndarray]) -> np.ndarray:
        """The region each place falls in (-1: none): overlapping one of a region's
        places, or sharing a span of min_span tokens with its sequence."""
        spans = _span_owners(self.sequences, self.min_span)
        by_doc: dict[int, list[tuple[int, int, int]]] = {}
        for number, group in enumerate(self.table.column("places").to_pylist()):
            for p in group:
                by_doc.setdefault(p["doc"], []).append((p["start"], p["end"], number))
        out = np.full(len(places), -1, np.int64)
        for i, (place, toks) in enumerate(zip(places, tokens)):
            hit = next((n for a, b, n in by_doc.get(place.doc, ()) if place.start < b and a < place.end), None)
            if hit is None:
                hit = next((spans[g] for g in _spans(toks, self.min_span) if g in spans), None)
            if hit is not None:
                out[i] = hit
        return out


def _spans(tokens: np.ndarray, length: int) -> list[bytes]:
    """Every run of `length` tokens (the whole sequence if shorter), as hashable bytes."""
    tokens = np.asarray(tokens, np.uint32)
    if tokens.size <= length:
        return [tokens.tobytes()]
    raw = tokens.tobytes()
    return [raw[4 * i : 4 * (i + length)] for i in range(tokens.size - length + 1)]


def _span_owners(sequences: Sequence[np.ndarray], length: int) -> dict[bytes, int]:
    owners: dict[bytes, int] = {}
    for number, tokens in enumerate(sequences):
        for span in _spans(tokens, length):
            owners.setdefault(span, number)
    return owners


def build_regions(
    index,
    found: pa.Table,
    options: FindOptions,
    decode: Callable[[Sequence[int]], str],
    max_tokens: int = 256,
) -> Regions:
    """Merge, cut, rank and deduplicate the places memorized generations point at."""
    places = places_of(index, found, options)
    pieces = _pieces(_merged(places), max_tokens)
    names = index.documents().column("id").to_pylist() if pieces else []
    evidence = {name: _filled(found, name) for name in EVIDENCE}
    scored = []
    for doc, start, end, rows in pieces:
        best = max(rows, key=lambda r: tuple(evidence[name][r] for name in EVIDENCE[:4]))
        tokens = index.windows(np.array([doc]), np.array([start]), end - start)[0]
        scored.append((tuple(evidence[name][best] for name in EVIDENCE[:4]), doc, start, end, rows, best, tokens))
    scored.sort(key=lambda s: (tuple(-v for v in s[0]), s[1], s[2]))
    groups: list[dict] = []
    owners: dict[bytes, int] = {}
    for _, doc, start, end, rows, best, tokens in scored:
        spans = _spans(tokens, options.min_span)
        number = owners[spans[0]] if all(s in owners for s in spans) else None
        if number is None:
            number = len(groups)
            groups.append({"doc": doc, "start": start, "tokens": tokens, "best": best, "rows": [], "places": []})
        group = groups[number]
        group["rows"].extend(rows)
        group["places"].append({"doc": doc, "start": start, "end": end})
        for s in spans:
            owners.setdefault(s, number)
    return Regions(_table(groups, found, evidence, names, decode, index, options.k), options.min_span)


def unseen_windows(index, found: pa.Table, regions: Regions, options: FindOptions, count: int):
    """Up to `count` windows whose prompts were never memorized, that overlap no region
    and share no span of min_span tokens with one: (ids, token arrays). A proxy for
    unseen text, since with a pretrained model nobody can prove a sequence unseen."""
    prompted = found.filter(pc.equal(found.column("kind"), "prompt"))
    flagged = set(prompted.filter(prompted.column("memorized")).column("prompt").to_pylist())
    greedy = prompted.filter(pc.equal(prompted.column("sample"), 0))
    candidates = [
        (p, d, s)
        for p, d, s in zip(*(greedy.column(c).to_pylist() for c in ("prompt", "doc", "start")))
        if p not in flagged
    ]
    length = options.k + options.m
    if not candidates:
        return [], []
    tokens = index.windows(np.array([d for _, d, _ in candidates]), np.array([s for _, _, s in candidates]), length)
    places = [Place(d, s, s + length, -1) for _, d, s in candidates]
    outside = regions.assign(places, list(tokens)) < 0
    kept = [i for i in np.flatnonzero(outside)[:count]]
    return [f"u{candidates[i][0]:06d}" for i in kept], [tokens[i].astype(np.uint32) for i in kept]


def _filled(found: pa.Table, name: str) -> list:
    if name not in found.column_names:
        return [0] * found.num_rows
    return [0 if v is None else v for v in found.column(name).to_pylist()]


def _merged(places: list[Place]) -> list[tuple[int, int, int, list[Place]]]:
    """Overlapping places of a document merged: (doc, start, end, places)."""
    merged: list[tuple[int, int, int, list[Place]]] = []
    for p in sorted(places, key=lambda p: (p.doc, p.start, p.end)):
        if merged and merged[-1][0] == p.doc and p.start < merged[-1][2]:
            doc, start, end, members = merged[-1]
            merged[-1] = (doc, start, max(end, p.end), [*members, p])
        else:
            merged.append((p.doc, p.start, p.end, [p]))
    return merged


def _pieces(merged, max_tokens: int) -> list[tuple[int, int, int, list[int]]]:
    """Regions longer than max_tokens cut into consecutive pieces, each with the rows of
    the generations whose places overlap it: (doc, start, end, rows)."""
    out = []
    for doc, start, end, members in merged:
        for a in range(start, end, max_tokens):
            b = min(a + max_tokens, end)
            out.append((doc, a, b, [p.row for p in members if p.start < b and a < p.end]))
    return out


def _table(groups, found: pa.Table, evidence, names, decode, index, k: int) -> pa.Table:
    generations = found.column("generation")
    rows = []
    for rank, group in enumerate(groups, 1):
        best = group["best"]
        generation = generations[best].as_py()
        begin = int(found.column("match_start")[best].as_py())
        span = generation[begin : begin + int(found.column("longest_match")[best].as_py())]
        tokens = group["tokens"]
        prompt = ""
        if found.column("kind")[best].as_py() == "prompt":
            doc, start = found.column("doc")[best].as_py(), found.column("start")[best].as_py()
            prompt = decode(index.windows(np.array([doc]), np.array([start]), k)[0].tolist())
        rows.append(
            {
                "region": f"r{rank:05d}",
                "rank": rank,
                "doc": group["doc"],
                "doc_id": names[group["doc"]],
                "start": group["start"],
                "n_tokens": int(tokens.size),
                "text": decode(tokens.tolist()),
                "tokens": tokens.tolist(),
                "copies": len(group["places"]) - 1,
                "copy_doc_ids": sorted({names[p["doc"]] for p in group["places"][1:]}),
                "places": group["places"],
                "n_generations": len(set(group["rows"])),
                **{name: evidence[name][best] for name in EVIDENCE},
                "corpus_count": index.count(np.asarray(span, np.uint32)) if span else 0,
                "prompt": prompt,
                "generation": decode(generation),
                "matched_span": decode(span),
                "best_row": best,
            }
        )
    schema = pa.schema(
        [
            ("region", pa.string()),
            ("rank", pa.int64()),
            ("doc", pa.int64()),
            ("doc_id", pa.string()),
            ("start", pa.int64()),
            ("n_tokens", pa.int64()),
            ("text", pa.string()),
            ("tokens", pa.list_(pa.uint32())),
            ("copies", pa.int64()),
            ("copy_doc_ids", pa.list_(pa.string())),
            ("places", PLACE_TYPE),
            ("n_generations", pa.int64()),
            ("exact_match", pa.bool_()),
            ("longest_match", pa.int64()),
            ("edit_similarity", pa.float64()),
            ("prefix_length", pa.int64()),
            ("bleu4", pa.float64()),
            ("rouge_l_f1", pa.float64()),
            ("corpus_count", pa.int64()),
            ("prompt", pa.string()),
            ("generation", pa.string()),
            ("matched_span", pa.string()),
            ("best_row", pa.int64()),
        ]
    )
    return pa.Table.from_pylist(rows, schema)
