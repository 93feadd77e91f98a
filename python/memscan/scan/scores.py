"""Pair scores for verbatim and approximate memorization (docs/definitions.md).

Every function takes token sequences (lists or numpy arrays of ids, or a `Packed`
batch) and runs in the Rust core, in parallel, without the GIL. Conventions: two empty
sequences are identical (similarity 1); an empty sequence against a non-empty one scores 0.

- exact_match, prefix_length: the generation equals / shares a prefix with the reference.
- positional_match: share of reference positions holding the same token (Pythia-style).
- edit_similarity: 1 - Levenshtein / max length, over tokens (>= 0.9 counts as approximate).
- bleu4: sentence BLEU-4 with add-one smoothing of the 2- to 4-gram precisions
  (Lin & Och 2004; Chen & Cherry 2014 method 2) and the brevity penalty (>= 0.75 counts).
- rouge_l_f1, rouge_l_recall: from the longest common subsequence (MUSE).
- approximate_match: edit similarity >= 0.9 or BLEU-4 >= 0.75.
- ngram_overlap: OVERLAP_n(a, b), share of a's n-grams (multiset) in the set of b's.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from memscan import _core
from memscan._core import PairScores
from memscan.errors import UserError, core_call
from memscan.scan.ragged import Packed, pack


def _check_aligned(generations: Sequence | Packed, references: Sequence | Packed) -> None:
    if len(generations) != len(references):
        raise UserError(f"{len(generations)} generations but {len(references)} references")


def pair_scores(
    generations: Sequence | Packed, references: Sequence | Packed, threads: int | None = None
) -> PairScores:
    """All pair scores for aligned generations and references."""
    _check_aligned(generations, references)
    return core_call(_core.pair_scores, *pack(generations), *pack(references), threads)


def ngram_overlap(
    generations: Sequence | Packed, references: Sequence | Packed, n: int = 10, threads: int | None = None
) -> np.ndarray:
    """OVERLAP_n for every aligned pair; every generation needs at least n tokens."""
    _check_aligned(generations, references)
    return core_call(_core.ngram_overlap, *pack(generations), *pack(references), n, threads)


def extraction_likelihood(
    sequences: Sequence | Packed,
    generations: Sequence | Packed,
    owner: Sequence[int] | np.ndarray,
    prefix: Sequence[int] | np.ndarray,
    n: int = 10,
    threads: int | None = None,
) -> np.ndarray:
    """EL_n per sequence from the greedy continuations of its prefixes.

    generations[j] continues the first prefix[j] tokens of sequences[owner[j]] and
    holds exactly T - prefix[j] tokens, prefix lengths running from 1 to T - n (Jang et
    al.'s code); EL_n sums OVERLAP_n over a sequence's generations and divides by T - n.
    """
    owner_ids = np.ascontiguousarray(owner, dtype=np.uint32)
    prefix_lengths = np.ascontiguousarray(prefix, dtype=np.uint32)
    return core_call(
        _core.extraction_likelihood, *pack(sequences), *pack(generations), owner_ids, prefix_lengths, n, threads
    )


__all__ = ["PairScores", "extraction_likelihood", "ngram_overlap", "pair_scores"]
