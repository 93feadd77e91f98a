"""Type stub of the native module built from rust/python (memscan-py); `make lint` checks
it against the built module with stubtest.

Token batches are flat: `tokens` (uint32) and `offsets` (uint64, length batch + 1,
starting at 0 and ending at len(tokens)). Arrays must be contiguous; batch calls
release the GIL and run on `threads` rayon workers (all cores when None).
"""

from os import PathLike
from pathlib import Path
from typing import final

import numpy as np
import numpy.typing as npt

__all__ = [
    "IndexCorruptError",
    "pack_arrays",
    "write_shard",
    "pair_scores",
    "ngram_overlap",
    "extraction_likelihood",
    "PairScores",
    "MatchingStatistics",
    "Spans",
    "IndexWriter",
    "CorpusIndex",
]

_U32 = npt.NDArray[np.uint32]
_U64 = npt.NDArray[np.uint64]
_I64 = npt.NDArray[np.int64]
_F64 = npt.NDArray[np.float64]
_Bools = npt.NDArray[np.bool_]

class IndexCorruptError(ValueError):
    """An index directory that is not one, is truncated, or fails its checksum."""

@final
class PairScores:
    """Every pair score of a batch, one entry per pair."""

    @property
    def exact_match(self) -> _Bools: ...
    @property
    def prefix_length(self) -> _U32: ...
    @property
    def positional_match(self) -> _F64: ...
    @property
    def edit_similarity(self) -> _F64: ...
    @property
    def bleu4(self) -> _F64: ...
    @property
    def rouge_l_f1(self) -> _F64: ...
    @property
    def rouge_l_recall(self) -> _F64: ...
    @property
    def approximate_match(self) -> _Bools:
        """edit_similarity >= 0.9 or bleu4 >= 0.75."""

@final
class Spans:
    """Maximal corpus spans of a batch of queries, as aligned arrays."""

    @property
    def query(self) -> _U64: ...
    @property
    def start(self) -> _U64: ...
    @property
    def length(self) -> _U64: ...
    @property
    def doc(self) -> _I64: ...

@final
class MatchingStatistics:
    """Per query token: the longest corpus span starting there and one document holding
    it (-1 when none); query i is offsets[i]:offsets[i + 1] of the flat arrays."""

    @property
    def lengths(self) -> _U32: ...
    @property
    def docs(self) -> _I64: ...
    @property
    def offsets(self) -> _U64: ...
    def __new__(cls, lengths: _U32, docs: _I64, offsets: _U64) -> MatchingStatistics: ...
    def coverage(self, k: int) -> _F64: ...
    def spans(self, k: int) -> Spans: ...

def pack_arrays(seqs: list[np.ndarray]) -> tuple[_U32, _U64] | None: ...
def write_shard(dir: str | PathLike[str], tokens: _U32, offsets: _U64, threads: int | None = None) -> str:
    """Builds one shard into the new folder dir; returns its description (JSON) for IndexWriter.adopt_shard."""

def pair_scores(
    gen_tokens: _U32, gen_offsets: _U64, ref_tokens: _U32, ref_offsets: _U64, threads: int | None = None
) -> PairScores: ...
def ngram_overlap(
    gen_tokens: _U32, gen_offsets: _U64, ref_tokens: _U32, ref_offsets: _U64, n: int, threads: int | None = None
) -> _F64: ...
def extraction_likelihood(
    seq_tokens: _U32,
    seq_offsets: _U64,
    gen_tokens: _U32,
    gen_offsets: _U64,
    owner: _U32,
    prefix: _U32,
    n: int,
    threads: int | None = None,
) -> _F64: ...

@final
class IndexWriter:
    def __new__(cls, path: str | PathLike[str], overwrite: bool = False) -> IndexWriter: ...
    @property
    def work_dir(self) -> Path: ...
    def add_shard(self, tokens: _U32, offsets: _U64, threads: int | None = None) -> None: ...
    def adopt_shard(self, name: str, piece_json: str) -> None:
        """Appends a shard `write_shard` wrote into work_dir/<name>; piece_json is what it returned."""
    def add_file(self, rel: str) -> None: ...
    def finish(self, metadata_json: str) -> None: ...
    def abort(self) -> None: ...

@final
class CorpusIndex:
    @staticmethod
    def open(path: str | PathLike[str], verify: bool = False, shards: list[int] | None = None) -> CorpusIndex: ...
    def verify(self) -> None: ...
    @property
    def n_tokens(self) -> int: ...
    @property
    def n_documents(self) -> int: ...
    @property
    def header_json(self) -> str: ...
    def document(self, doc: int) -> _U32: ...
    def document_lengths(self) -> _U64: ...
    def windows(self, docs: _U64, starts: _U64, length: int, threads: int | None = None) -> _U32:
        """Tokens starts[i]..starts[i] + length of document docs[i], flat."""
    def count(self, ngram: _U32) -> int: ...
    def count_batch(self, tokens: _U32, offsets: _U64, threads: int | None = None) -> _U64: ...
    def locate(self, ngram: _U32, limit: int) -> tuple[_U64, _U64]: ...
    def matching_statistics(self, tokens: _U32, offsets: _U64, threads: int | None = None) -> MatchingStatistics: ...
