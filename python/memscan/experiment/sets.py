"""The forget, unseen and held-out sets of an experiment: disjoint, seeded draws of KJV
passages (public domain) of one token length."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from memscan.errors import UserError
from memscan.model.loading import LoadedModel
from memscan.scan.corpus import kjv_paragraphs

Labelled = tuple[list[str], list[np.ndarray]]  # (ids, token arrays)


@dataclass(frozen=True)
class PassageSizes:
    tokens: int  # per passage
    forget: int
    unseen: int
    heldout: int


@dataclass(frozen=True)
class PassageSets:
    forget: Labelled
    unseen: Labelled
    heldout: Labelled


def kjv_passages(loaded: LoadedModel, sizes: PassageSizes, seed: int) -> PassageSets:
    """The first `sizes.tokens` tokens of KJV paragraphs that long, shuffled with `seed` and dealt out."""
    pool = _long_paragraphs(loaded.encode, sizes)
    order = np.random.default_rng(seed).permutation(len(pool))
    sets, start = {}, 0
    for name, size in _wanted(sizes).items():
        picked = [pool[i] for i in order[start : start + size]]
        sets[name] = ([p[0] for p in picked], [p[1] for p in picked])
        start += size
    return PassageSets(**sets)


def check_passages(encode: Callable[[list[str]], list[list[int]]], sizes: PassageSizes) -> None:
    """Refuse sizes the KJV cannot fill with this tokenizer (`encode`: texts to ids, no
    special tokens), before a model is loaded or a folder made."""
    _long_paragraphs(encode, sizes)


def _wanted(sizes: PassageSizes) -> dict[str, int]:
    return {"forget": sizes.forget, "unseen": sizes.unseen, "heldout": sizes.heldout}


def _long_paragraphs(encode, sizes: PassageSizes) -> list[tuple[str, np.ndarray]]:
    records = list(kjv_paragraphs())
    encoded = encode([r.text or "" for r in records])
    pool = [
        (r.id, np.asarray(e[: sizes.tokens], np.uint32)) for r, e in zip(records, encoded) if len(e) >= sizes.tokens
    ]
    wanted = _wanted(sizes)
    if sum(wanted.values()) > len(pool):
        raise UserError(
            f"{sum(wanted.values())} KJV passages of {sizes.tokens} tokens wanted ({', '.join(f'{k} {v}' for k, v in wanted.items())}), "
            f"but only {len(pool)} paragraphs are that long"
        )
    return pool
