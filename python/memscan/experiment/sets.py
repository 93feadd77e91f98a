"""The forget, unseen and held-out sets of an experiment: disjoint, seeded draws of KJV
passages (public domain) of one token length, or, without implanting, sequences read
from files (the papers' forget sets and Pile text), cut to that length."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

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


def file_passages(
    loaded: LoadedModel,
    forget_path: Path,
    unseen_path: Path,
    sizes: PassageSizes,
    seed: int,
    text_field: str = "text",
    id_field: str = "id",
    min_tokens: int = 2,
) -> PassageSets:
    """The forget set from `forget_path` (a seeded sample of `sizes.forget` when it holds
    more), unseen and held-out sets as seeded draws from `unseen_path`; every sequence cut
    to its first `sizes.tokens` tokens. Sequences shorter than `min_tokens` are left out
    (the papers' 200-token sequences are GPT-Neo tokens: another tokenizer may need fewer)."""
    from memscan.model.sequences import check_disjoint

    def usable(path: Path) -> tuple[list[str], list[np.ndarray]]:
        return _usable(loaded, path, sizes.tokens, text_field, id_field, min_tokens)

    def draw(labelled, count: int, what: str, path: Path, offset: int = 0):
        if len(labelled[0]) < offset + count:
            raise UserError(
                f"{path}: {len(labelled[0])} sequences of at least {min_tokens} tokens, "
                f"but the {what} needs {offset + count}"
            )
        order = np.random.default_rng(seed).permutation(len(labelled[0]))[offset : offset + count]
        return [labelled[0][i] for i in order], [labelled[1][i] for i in order]

    forget_all = usable(forget_path)
    forget = (
        forget_all if len(forget_all[0]) == sizes.forget else draw(forget_all, sizes.forget, "forget set", forget_path)
    )
    pool = usable(unseen_path)
    unseen = draw(pool, sizes.unseen, "unseen set", unseen_path)
    heldout = draw(pool, sizes.heldout, "unseen and held-out sets", unseen_path, sizes.unseen)
    check_disjoint(forget, unseen)
    check_disjoint(forget, heldout, "held-out")
    return PassageSets(forget, unseen, heldout)


def retain_passages(
    loaded: LoadedModel,
    path: Path,
    sets: PassageSets,
    count: int,
    tokens: int,
    seed: int,
    text_field: str = "text",
    id_field: str = "id",
    min_tokens: int = 2,
) -> list[np.ndarray]:
    """A seeded draw of `count` sequences of `path` (each cut to its first `tokens`
    tokens) that equal none of the forget, unseen and held-out sequences: the retain set
    of the methods that step on one, disjoint from what is forgotten or measured."""
    _, sequences = _usable(loaded, path, tokens, text_field, id_field, min_tokens)
    taken = {s.tobytes() for labelled in (sets.forget, sets.unseen, sets.heldout) for s in labelled[1]}
    pool = [s for s in sequences if s.tobytes() not in taken]
    if len(pool) < count:
        raise UserError(
            f"{path}: {len(pool)} sequences of at least {min_tokens} tokens outside the forget, unseen and "
            f"held-out sets, but the retain set needs {count}"
        )
    return [pool[i] for i in np.random.default_rng(seed).permutation(len(pool))[:count]]


def _usable(
    loaded: LoadedModel, path: Path, tokens: int, text_field: str, id_field: str, min_tokens: int
) -> tuple[list[str], list[np.ndarray]]:
    """(ids, sequences) of a file, each cut to its first `tokens` tokens, those shorter than `min_tokens` left out."""
    from memscan.model.sequences import encode_set, long_enough, read_set

    return long_enough(encode_set(read_set(path, text_field, id_field), loaded, tokens), min_tokens)
