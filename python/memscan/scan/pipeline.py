"""From input files to token arrays: the glue shared by the commands and the Python API."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from memscan.errors import UserError
from memscan.scan.corpus import BUILTIN
from memscan.scan.index import CorpusIndex, Document
from memscan.scan.ragged import check_token_ids
from memscan.scan.readers import Record, read_records
from memscan.scan.tokenizer import LoadedTokenizer

TOKENIZE_BATCH = 2048


def records_of(
    inputs: Iterable[str], text_field: str = "text", id_field: str = "id", split_lines: bool = False
) -> Iterator[Record]:
    """Records of every input in turn; a built-in corpus name (`kjv`, `transformers-configs`)
    stands for that corpus unless a file of that name exists."""
    for name in inputs:
        if name in BUILTIN and not Path(name).exists():
            yield from BUILTIN[name]()
        else:
            yield from read_records(name, text_field, id_field, split_lines)


def check_inputs(inputs: Iterable[str]) -> None:
    """Refuse a missing input before any work starts (formats are checked as each is read)."""
    for name in inputs:
        if not (name in BUILTIN or Path(name).exists()):
            raise UserError(f"{name}: no such file or directory")


def tokenize(
    records: Iterable[Record],
    tokenizer: LoadedTokenizer,
    batch: int = TOKENIZE_BATCH,
    max_tokens: int | None = None,
) -> Iterator[tuple[Record, np.ndarray]]:
    """(record, token ids) for every record, texts encoded in parallel batches; each cut
    to its first `max_tokens` tokens when given (the papers' T = 200)."""
    pending: list[Record] = []

    def flush():
        texts = [r.text for r in pending if r.text is not None]
        encoded = iter(tokenizer.encode(texts))
        for r in pending:
            tokens = next(encoded) if r.text is not None else _checked_ids(r, tokenizer)
            yield r, tokens[:max_tokens] if max_tokens else tokens
        pending.clear()

    for record in records:
        pending.append(record)
        if len(pending) >= batch:
            yield from flush()
    yield from flush()


def _checked_ids(record: Record, tokenizer: LoadedTokenizer) -> np.ndarray:
    ids = record.tokens or []
    check_token_ids(record.id, ids, tokenizer.vocab_size, tokenizer.name)
    return np.asarray(ids, dtype=np.uint32)


def documents_of(
    inputs: Iterable[str],
    tokenizer: LoadedTokenizer,
    text_field: str = "text",
    id_field: str = "id",
    split_lines: bool = False,
    max_tokens: int | None = None,
) -> Iterator[Document]:
    """Every input's records, tokenized (cut to `max_tokens` when given), as documents to index."""
    records = records_of(inputs, text_field, id_field, split_lines)
    return (
        Document(tokens, record.source, record.id)
        for record, tokens in tokenize(records, tokenizer, max_tokens=max_tokens)
    )


def build_index(
    inputs: Iterable[str],
    out: str | Path,
    tokenizer: LoadedTokenizer,
    *,
    text_field: str = "text",
    id_field: str = "id",
    split_lines: bool = False,
    shard_tokens: int | None = None,
    threads: int | None = None,
    overwrite: bool = False,
    max_tokens: int | None = None,
    progress=None,
) -> CorpusIndex:
    """Tokenize every input (each document cut to `max_tokens` when given) and index it.
    `progress(n_docs, n_tokens)` is told of each shard."""
    docs = documents_of(inputs, tokenizer, text_field, id_field, split_lines, max_tokens)
    options = {"shard_tokens": shard_tokens} if shard_tokens else {}
    index = CorpusIndex.build(
        docs, out, tokenizer=tokenizer.identity(), threads=threads, overwrite=overwrite, on_shard=progress, **options
    )
    return index
