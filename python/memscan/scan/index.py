"""The corpus index: build it from token documents, open it, and query it.

A thin layer over `memscan._core.CorpusIndex` (format and byte counts in
rust/core/src/index/mod.rs): it packs queries, checks the tokenizer a query was
made with against the one the index was built with, and keeps the table of
document names (`documents.parquet`) next to the shards. Coverage and spans are
read off one `MatchingStatistics` result, so a caller that wants both pays for
the matching statistics once.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from memscan import _core
from memscan.errors import IndexCorruptError, UserError, core_call, first_line
from memscan.scan.ragged import as_tokens, check_token_ids, pack, unpack

DOCUMENTS_FILE = "documents.parquet"
DEFAULT_SHARD_TOKENS = 1 << 30
# Indexes smaller than this are checksummed in full whenever they are opened.
AUTO_VERIFY_BYTES = 1 << 30


@dataclass
class Document:
    """One document to index: its tokens and where it came from."""

    tokens: np.ndarray
    source: str = ""
    id: str = ""


def shard_batches(documents: Iterable[Document], shard_tokens: int) -> Iterator[list[Document]]:
    """The documents in consecutive batches of at most `shard_tokens` tokens (a longer
    document is a batch of its own): one shard each."""
    batch: list[Document] = []
    size = 0
    for doc in documents:
        if size and doc.tokens.size and size + doc.tokens.size > shard_tokens:
            yield batch
            batch, size = [], 0
        batch.append(doc)
        size += doc.tokens.size
    if batch:
        yield batch


class DocumentNames:
    """Where each indexed document came from, in document order (`documents.parquet`)."""

    def __init__(self) -> None:
        self.sources: list[str] = []
        self.ids: list[str] = []

    def add(self, documents: Sequence[Document]) -> None:
        self.sources.extend(d.source for d in documents)
        self.ids.extend(d.id for d in documents)

    def table(self) -> pa.Table:
        """Columns source and id (the index's table adds the document numbers)."""
        return pa.table({"source": pa.array(self.sources, pa.string()), "id": pa.array(self.ids, pa.string())})


def finish_build(writer: _core.IndexWriter, names: pa.Table, tokenizer: dict | None) -> None:
    """Writes the table of document names, then the header, and moves the index into place."""
    table = pa.table({"doc": pa.array(range(names.num_rows), pa.int64()), **{c: names[c] for c in ("source", "id")}})
    pq.write_table(table, writer.work_dir / DOCUMENTS_FILE)
    core_call(writer.add_file, DOCUMENTS_FILE)
    core_call(writer.finish, json.dumps({"tokenizer": tokenizer}))


class CorpusIndex:
    """A suffix-array index over a corpus of token documents, memory-mapped read-only."""

    def __init__(self, core: _core.CorpusIndex, path: Path):
        self._core = core
        self.path = path
        self.header = json.loads(core.header_json)
        metadata = self.header["metadata"]
        if not isinstance(metadata, dict) or not isinstance(metadata.get("tokenizer") or {}, dict):
            raise IndexCorruptError(f"{path}: the header's metadata is not memscan's (no tokenizer description)")

    # ---- building -------------------------------------------------------------
    @classmethod
    def build(
        cls,
        documents: Iterable[Document | Sequence[int] | np.ndarray],
        path: str | Path,
        *,
        tokenizer: dict | None = None,
        shard_tokens: int = DEFAULT_SHARD_TOKENS,
        threads: int | None = None,
        overwrite: bool = False,
        on_shard=None,
    ) -> CorpusIndex:
        """Index `documents` (token arrays or `Document`s) into the directory `path`.

        Documents are gathered into shards of at most `shard_tokens` tokens, so memory
        stays bounded by one shard (about 12 bytes per token while sorting) whatever
        the corpus size. `tokenizer` is the identity of the tokenizer that made the
        tokens (see `LoadedTokenizer.identity`); queries are checked against it.
        The index appears at `path` only once complete. `on_shard(n_docs, n_tokens)`
        is called after each shard, for progress.
        """
        path = Path(path)
        if shard_tokens < 1:
            raise UserError("shard_tokens must be at least 1")
        docs = (d if isinstance(d, Document) else Document(as_tokens(d)) for d in documents)
        writer = core_call(_core.IndexWriter, str(path), overwrite)
        names = DocumentNames()
        try:
            for shard in shard_batches(docs, shard_tokens):
                tokens, offsets = pack([d.tokens for d in shard])
                core_call(writer.add_shard, tokens, offsets, threads)
                names.add(shard)
                if on_shard:
                    on_shard(len(shard), int(tokens.size))
            finish_build(writer, names.table(), tokenizer)
        except BaseException:
            writer.abort()
            raise
        return cls.open(path)

    # ---- opening --------------------------------------------------------------
    @classmethod
    def open(cls, path: str | Path, verify: bool | None = None) -> CorpusIndex:
        """Memory-map the index at `path`. Sizes are always checked; checksums when
        `verify` is True, or by default when the index is smaller than 1 GiB."""
        path = Path(path)
        if not path.exists():
            raise UserError(f"{path}: no such index directory")
        core = core_call(_core.CorpusIndex.open, str(path), False)
        index = cls(core, path)
        if verify or (verify is None and index.size_bytes < AUTO_VERIFY_BYTES):
            core_call(core.verify)
        return index

    @property
    def size_bytes(self) -> int:
        return sum(f["bytes"] for f in self.header["files"].values())

    @property
    def n_tokens(self) -> int:
        return self._core.n_tokens

    @property
    def n_documents(self) -> int:
        return self._core.n_documents

    @property
    def tokenizer(self) -> dict | None:
        return self.header["metadata"].get("tokenizer")

    def documents(self) -> pa.Table:
        """Table of (doc, source, id) naming every indexed document."""
        try:
            table = pq.read_table(self.path / DOCUMENTS_FILE)
        except (pa.ArrowException, OSError) as e:
            raise IndexCorruptError(f"{self.path / DOCUMENTS_FILE}: unreadable ({first_line(e)})") from None
        if table.num_rows != self.n_documents or not {"doc", "source", "id"} <= set(table.column_names):
            raise IndexCorruptError(
                f"{self.path / DOCUMENTS_FILE}: does not name the index's {self.n_documents} documents"
            )
        return table

    def document(self, doc: int) -> np.ndarray:
        return core_call(self._core.document, doc)

    def document_lengths(self) -> np.ndarray:
        """The token count of every document (uint64), in document order."""
        return core_call(self._core.document_lengths)

    def windows(self, docs: np.ndarray, starts: np.ndarray, length: int, threads: int | None = None) -> np.ndarray:
        """Tokens starts[i]..starts[i] + length of document docs[i], one row each ([len(docs), length])."""
        docs, starts = np.ascontiguousarray(docs, np.uint64), np.ascontiguousarray(starts, np.uint64)
        flat = core_call(self._core.windows, docs, starts, length, threads)
        return flat.reshape(len(docs), length)

    def check_tokenizer(self, identity: dict) -> None:
        """Refuse queries tokenized with another tokenizer than the index's."""
        mine = self.tokenizer
        if mine and identity and mine.get("sha256") != identity.get("sha256"):
            raise UserError(
                f"the index was built with tokenizer {mine.get('name')!r} but the queries use "
                f"{identity.get('name')!r}: token ids would not mean the same words"
            )

    def check_ids(self, queries: Sequence[np.ndarray], names: Sequence[str] | None = None) -> None:
        """Refuse token ids the index's tokenizer cannot produce."""
        vocab = (self.tokenizer or {}).get("vocab_size")
        if vocab is None:
            return
        for i, q in enumerate(queries):
            check_token_ids(names[i] if names else f"query {i}", q, vocab, "the index's tokenizer")

    # ---- queries --------------------------------------------------------------
    def count(self, ngram: Sequence[int]) -> int:
        """Occurrences of `ngram` in the corpus (never across documents)."""
        return core_call(self._core.count, as_tokens(ngram))

    def count_batch(self, ngrams: Sequence, threads: int | None = None) -> np.ndarray:
        return core_call(self._core.count_batch, *pack(ngrams), threads)

    def locate(self, ngram: Sequence[int], limit: int = 100) -> list[tuple[int, int]]:
        """Up to `limit` (doc, offset) places where `ngram` occurs, sorted."""
        docs, offsets = core_call(self._core.locate, as_tokens(ngram), limit)
        return list(zip(docs.tolist(), offsets.tolist()))

    def statistics(self, queries: Sequence, threads: int | None = None) -> _core.MatchingStatistics:
        """Matching statistics of every query, flat; `.coverage(k)` and `.spans(k)` read off them."""
        return core_call(self._core.matching_statistics, *pack(queries), threads)

    def matching_statistics(self, queries: Sequence, threads: int | None = None) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per query: (lengths, docs). lengths[j] is the longest span starting at token j
        that occurs in the corpus; docs[j] a document holding it (-1 when none)."""
        stats = self.statistics(queries, threads)
        return list(zip(unpack(stats.lengths, stats.offsets), unpack(stats.docs, stats.offsets)))

    def coverage(self, queries: Sequence, k: int, threads: int | None = None) -> np.ndarray:
        """Share of each query's tokens inside a corpus span of at least k tokens."""
        return core_call(self.statistics(queries, threads).coverage, k)

    def attribute(self, queries: Sequence, k: int, threads: int | None = None) -> _core.Spans:
        """Maximal corpus spans of at least k tokens: aligned arrays query, start, length, doc."""
        return core_call(self.statistics(queries, threads).spans, k)
