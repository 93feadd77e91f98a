"""Forget and unseen sets: read from the user's files (before any model is loaded, so
bad input costs no model time) and tokenized as the model expects."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from memscan.errors import UserError
from memscan.model.loading import LoadedModel
from memscan.scan.pipeline import records_of
from memscan.scan.ragged import check_token_ids
from memscan.scan.readers import Record


def read_set(path: str | Path, text_field: str = "text", id_field: str = "id") -> list[Record]:
    """Every record of one set; an empty set is an error."""
    records = list(records_of([str(path)], text_field, id_field))
    if not records:
        raise UserError(f"{path}: holds no sequences")
    return records


def encode_set(
    records: Sequence[Record], loaded: LoadedModel, max_tokens: int | None = None
) -> tuple[list[str], list[np.ndarray]]:
    """(ids, token arrays) of every record: texts encoded by the model's tokenizer
    (no special tokens; the BOS context is added where scores need it), token lists
    checked against the model's vocabulary; each cut to `max_tokens` when given."""
    texts = [r.text for r in records if r.text is not None]
    encoded = iter(loaded.encode(texts)) if texts else iter(())
    ids, sequences = [], []
    for r in records:
        tokens = next(encoded) if r.text is not None else (r.tokens or [])
        check_token_ids(r.id, tokens, loaded.vocab_size, "the model")
        ids.append(r.id)
        sequences.append(np.asarray(tokens[:max_tokens] if max_tokens else tokens, dtype=np.uint32))
    return ids, sequences


def long_enough(labelled: tuple[list[str], list[np.ndarray]], min_tokens: int) -> tuple[list[str], list[np.ndarray]]:
    """The (ids, sequences) of at least `min_tokens` tokens."""
    kept = [i for i, s in enumerate(labelled[1]) if len(s) >= min_tokens]
    return [labelled[0][i] for i in kept], [labelled[1][i] for i in kept]


def check_disjoint_records(forget: Sequence[Record], unseen: Sequence[Record]) -> None:
    """Refuse unseen records whose text (or token list) is also in the forget set."""

    def key(r: Record):
        return r.text if r.text is not None else tuple(r.tokens or ())

    seen = {key(r): r.id for r in forget}
    clash = next(((r.id, seen[key(r)]) for r in unseen if key(r) in seen), None)
    if clash:
        _overlap(*clash)


def check_disjoint(
    forget: tuple[list[str], list[np.ndarray]], other: tuple[list[str], list[np.ndarray]], what: str = "unseen"
) -> None:
    """Refuse sequences of the `what` set that also appear in the forget set once tokenized (and cut)."""
    seen = {s.tobytes(): i for i, s in zip(*forget)}
    clash = next(((i, seen[s.tobytes()]) for i, s in zip(*other) if s.tobytes() in seen), None)
    if clash:
        _overlap(*clash, what)


def _overlap(other_id: str, forget_id: str, what: str = "unseen"):
    raise UserError(
        f"{what} sequence {other_id!r} is also in the forget set (as {forget_id!r}); the two sets must not overlap"
    )
