"""Per-sequence memorization scores that need the model (docs/definitions.md).

One teacher-forced pass gives MA, the loss and extraction strength; one set of
greedy continuations (generated only where the teacher-forced pass cannot vouch
for reuse) gives EL_n for every prefix and the k-token-prompt extraction; the Rust
core scores the continuations (n-gram overlap, exact / prefix / edit / BLEU /
ROUGE-L) and matches free generations against a corpus index. On request the papers'
DPD sampler draws the k-prompt continuation too (`_dpd` twins of the extraction
columns) and, at a generation per prefix, EL_n's continuations (`el_{n}_dpd`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np
import pyarrow as pa

from memscan.errors import UserError
from memscan.model.forward import teacher_forced
from memscan.model.generation import continuations_of_prefixes, sampled_continuations_of_prefixes, sequence_caches
from memscan.model.loading import LoadedModel
from memscan.model.ranks import ONE, Ranks, pick
from memscan.scan.index import CorpusIndex
from memscan.scan.matches import scan_against_index
from memscan.scan.scores import extraction_likelihood, pair_scores


@dataclass(frozen=True)
class MemorizationOptions:
    n: int = 10  # EL_n's n; 0 skips EL
    k: int = 32  # prompt length of k-extractability; 0 skips it
    batch_size: int = 8  # teacher-forced rows per forward pass
    generation_batch_size: int = 128  # decoding slots (measured: benches/README.md)
    # Sequences generated for at a time: each holds its whole KV cache while its prefixes
    # are continued (9 MB for 200 SmolLM2 tokens in fp32), so this bounds memory on any
    # number of sequences; one per decoding slot keeps the slots full.
    sequences_in_flight: int = 128
    corpus_k: int = 32  # span length that counts as a corpus match
    # When set (with k > 0): the k-prompt continuation drawn as the papers' DPD samples too,
    # scored as the greedy one (`extractable_{k}_dpd`, `match_share_dpd`, ...), the
    # generator seeded with this; one draw per sequence.
    dpd_seed: int | None = None
    # With dpd_seed and n > 0: el_{n}_dpd, EL_n of one DPD draw per prefix (their NeoDP's
    # EL). Costs a full generation per prefix: a sampled continuation serves no other prefix.
    dpd_el: bool = False

    def __post_init__(self) -> None:
        if self.dpd_el and self.dpd_seed is None:
            raise ValueError("dpd_el needs a dpd_seed")

    @property
    def samples_dpd_el(self) -> bool:
        return self.dpd_el and self.n > 0

    @property
    def samples_dpd(self) -> bool:
        return self.dpd_seed is not None and (self.samples_dpd_el or self.k > 0)


def g_column(score: str, n: int) -> str:
    """The table column that holds g: `ma`, `extraction_strength`, `ma_dpd` (expected MA
    under the papers' differentially private decoding), `el_{n}` for EL, `el_{n}_dpd` for
    EL sampled under that decoding."""
    return {"el": f"el_{n}", "el_dpd": f"el_{n}_dpd"}.get(score, score)


def score_g(
    loaded: LoadedModel,
    sequences: Sequence[np.ndarray],
    score: str = "ma",
    n: int = 10,
    with_el: bool = False,
    ranks: Ranks = ONE,
) -> tuple[np.ndarray, np.ndarray | None]:
    """g of every sequence (`score` in G_SCORES), and EL_n too when g is EL or `with_el`;
    each of `ranks` scores its block of the sequences."""
    uses_el = score == "el" or with_el
    options = MemorizationOptions(n=n if uses_el else 0, k=0)
    ids = [str(i) for i in range(len(sequences))]
    table = ranks.split_table(
        len(sequences), lambda rows: memorization_table(loaded, pick(ids, rows), pick(sequences, rows), options)
    )
    el = table.column(f"el_{n}").to_numpy() if uses_el else None
    return table.column(g_column(score, n)).to_numpy(), el


def check_sequences(ids: Sequence[str], sequences: Sequence[np.ndarray], n: int, what: str) -> None:
    if not sequences:
        raise UserError(f"the {what} set holds no sequences")
    minimum = max(n + 1, 2)
    short = next((i for i, s in enumerate(sequences) if len(s) < minimum), None)
    if short is not None:
        raise UserError(
            f"{what} sequence {ids[short]!r} has {len(sequences[short])} tokens; scores need at least {minimum}"
            + (f" (n + 1 for EL_{n}; pass a smaller --n)" if n else "")
            + (f"; --min-tokens {minimum} leaves such unseen sequences out" if what == "unseen" else "")
        )


def memorization_table(
    loaded: LoadedModel,
    ids: Sequence[str],
    sequences: Sequence[np.ndarray],
    options: MemorizationOptions = MemorizationOptions(),
    index: CorpusIndex | None = None,
    progress: Callable[[str, int], Callable[[int], object]] | None = None,
) -> pa.Table:
    """One row per sequence: ma, ma_dpd, loss, extraction_strength, el_{n}, the k-prompt
    extraction scores, with an index how much of that generation the corpus covers, and
    with `options.dpd_seed` the extraction scores of a DPD draw (and el_{n}_dpd)."""
    sequences = [np.asarray(s, dtype=np.uint32) for s in sequences]
    stats = teacher_forced(loaded, sequences, options.batch_size, _stage(progress, "teacher-forced", len(sequences)))
    columns: dict[str, pa.Array] = {
        "id": pa.array(list(ids), pa.string()),
        "n_tokens": pa.array([len(s) for s in sequences], pa.int64()),
        "ma": pa.array([s.memorization_accuracy for s in stats], pa.float64()),
        "ma_dpd": pa.array([s.dpd_memorization_accuracy for s in stats], pa.float64()),
        "loss": pa.array([s.loss for s in stats], pa.float64()),
        "extraction_strength": pa.array([s.extraction_strength() for s in stats], pa.float64()),
    }
    wanted = [_wanted_prefixes(len(s), options) for s in sequences]
    if any(wanted):
        draws = sum(map(len, _dpd_prefixes(wanted, options)))
        sampling = _stage(progress, "sampling (DPD)", draws) if options.samples_dpd else None
        steps = (_stage(progress, "generating", sum(map(len, wanted))), sampling)
        hits = [s.hits for s in stats]
        block = options.sequences_in_flight
        chunks = [
            _generated_columns(
                loaded, sequences[a : a + block], wanted[a : a + block], hits[a : a + block], options, index, steps, a
            )
            for a in range(0, len(sequences), block)
        ]
        columns.update({name: _joined([c[name] for c in chunks]) for name in chunks[0]})
    return pa.table(columns)


def _generated_columns(loaded, sequences, wanted, hits, options: MemorizationOptions, index, steps, first_row) -> dict:
    """EL, the k-prompt extraction columns and, with `options.dpd_seed`, their DPD twins of
    a block of sequences starting at `first_row` (its draws seeded with dpd_seed +
    first_row, so a block draws the same whatever came before it); greedy and sampled
    continuations continue from one set of caches."""
    step, dpd_step = steps
    caches = sequence_caches(loaded, sequences) if options.samples_dpd else None
    found = continuations_of_prefixes(loaded, sequences, wanted, hits, options.generation_batch_size, step, caches)
    columns = _scored(sequences, found, options, index)
    if options.dpd_seed is not None and options.samples_dpd:
        seed = options.dpd_seed + first_row
        drawn = sampled_continuations_of_prefixes(
            loaded, sequences, _dpd_prefixes(wanted, options), seed, options.generation_batch_size, dpd_step, caches
        )
        dpd = _scored(sequences, drawn, replace(options, n=options.n if options.dpd_el else 0), index)
        columns.update({f"{name}_dpd": values for name, values in dpd.items()})
    return columns


def _scored(sequences, found, options: MemorizationOptions, index) -> dict[str, pa.Array]:
    """EL_n (n > 0) and the k-prompt extraction columns (k > 0) of a set of continuations."""
    columns = {}
    if options.n:
        columns[f"el_{options.n}"] = pa.array(_el(sequences, found, options.n), pa.float64())
    if options.k:
        columns.update(_extraction(sequences, found, options, index))
    return columns


def _dpd_prefixes(wanted: list[list[int]], options: MemorizationOptions) -> list[list[int]]:
    """The prefixes DPD draws from: every wanted one with EL sampled, else the k-prompt."""
    return wanted if options.samples_dpd_el else [[p for p in w if p == options.k] for w in wanted]


def _wanted_prefixes(length: int, options: MemorizationOptions) -> list[int]:
    prefixes = set(range(1, length - options.n + 1)) if options.n else set()  # Jang et al.: 1..T-n
    if options.k and length > options.k:
        prefixes.add(options.k)
    return sorted(prefixes)


def _el(sequences, found, n: int) -> np.ndarray:
    keep = (found.prefix >= 1) & (
        found.prefix <= np.asarray([len(sequences[i]) - n for i in found.owner], dtype=np.int64)
    )
    picked = np.flatnonzero(keep)
    return extraction_likelihood(
        sequences, [found.continuations[j] for j in picked], found.owner[picked], found.prefix[picked], n
    )


def _extraction(sequences, found, options: MemorizationOptions, index: CorpusIndex | None) -> dict[str, pa.Array]:
    """Exact / k-extractable and approximate scores of the continuation of the first k tokens."""
    k = options.k
    at_k = {int(i): j for j, (i, p) in enumerate(zip(found.owner, found.prefix)) if p == k}
    rows = [at_k.get(i) for i in range(len(sequences))]
    have = [i for i, j in enumerate(rows) if j is not None]
    generations = [found.continuations[rows[i]] for i in have]
    truths = [sequences[i][k:] for i in have]
    scores = pair_scores(generations, truths)
    columns = {
        f"extractable_{k}": scores.exact_match,
        "match_share": scores.positional_match,
        "common_prefix": scores.prefix_length,
        "edit_similarity": scores.edit_similarity,
        "bleu4": scores.bleu4,
        "rouge_l_f1": scores.rouge_l_f1,
        "rouge_l_recall": scores.rouge_l_recall,
        "approximate_match": scores.approximate_match,
    }
    out = {column: _scattered(have, values.tolist(), len(sequences)) for column, values in columns.items()}
    if index is not None and have:
        scan = scan_against_index(index, [str(i) for i in have], generations, k=options.corpus_k)
        for column in ("coverage", "longest_match", "top_doc_id"):
            out[f"corpus_{column}"] = _scattered(have, scan.column(column).to_pylist(), len(sequences))
    return out


def _joined(parts: list[pa.Array]) -> pa.Array:
    """One column from its blocks; a block of nulls only (no sequence long enough for a
    k-token prompt) takes the others' type."""
    typed = next((p.type for p in parts if p.type != pa.null()), pa.null())
    return pa.concat_arrays([p.cast(typed) for p in parts])


def _scattered(rows: list[int], values: list, size: int) -> pa.Array:
    """A column of `size` entries holding values[j] at rows[j] and null elsewhere
    (sequences too short for a k-token prompt have no extraction scores)."""
    column = [None] * size
    for row, value in zip(rows, values):
        column[row] = value
    return pa.array(column)


def _stage(progress, name: str, total: int):
    return progress(name, total) if progress else None
