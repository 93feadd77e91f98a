"""Reading documents and sequences from the formats users have.

JSONL (one object per line, a text field or a list of token ids), CSV/TSV with a
header row, plain text, Parquet, and folders written by `datasets.Dataset.save_to_disk`.
Records stream one at a time, so a corpus larger than memory can be indexed.

A record's id is its `id_field`; a record without one is named FILE:ROW when the field
is the default `id`, while a field the user named must be in every record (a typo would
otherwise name every record FILE:ROW without a word).
"""

from __future__ import annotations

import csv
import gzip
import json
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

import pyarrow as pa
import pyarrow.parquet as pq

from memscan.errors import UserError, first_line

TEXT_SUFFIXES = {".txt", ".md", ".text"}
JSONL_SUFFIXES = {".jsonl", ".json", ".ndjson"}
CSV_SUFFIXES = {".csv", ".tsv"}  # with a header row, e.g. the papers' forget sets: doc_id,corpus,text
DEFAULT_ID_FIELD = "id"
csv.field_size_limit(2**31 - 1)  # a document is one field, however long


@dataclass
class Record:
    """One input item: text to tokenize, or token ids already made."""

    id: str
    source: str
    text: str | None = None
    tokens: list[int] | None = None
    fields: dict = field(default_factory=dict)


def read_records(
    path: str | Path, text_field: str = "text", id_field: str = DEFAULT_ID_FIELD, split_lines: bool = False
) -> Iterator[Record]:
    """Records of one input. Plain text is one document per file, or one per
    non-empty line with `split_lines`."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path}: no such file or directory")
    if path.is_dir():
        yield from _read_dataset_folder(path, text_field, id_field)
        return
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    kind = suffixes[-1] if suffixes else ""
    if kind in JSONL_SUFFIXES:
        yield from _read_jsonl(path, text_field, id_field)
    elif kind in CSV_SUFFIXES:
        yield from _read_csv(path, text_field, id_field, delimiter="\t" if kind == ".tsv" else ",")
    elif kind == ".parquet":
        yield from _read_parquet(path, text_field, id_field)
    elif kind in TEXT_SUFFIXES or not kind:
        yield from _read_text(path, split_lines)
    else:
        raise UserError(
            f"{path}: unknown input format {kind!r} (use .jsonl, .csv, .txt, .parquet or a datasets folder)"
        )


@contextmanager
def _text_lines(path: Path, newline: str | None = None) -> Iterator[TextIO]:
    """The file as text (gzip too), its decoding failures as one UserError naming it."""
    opener = gzip.open if path.suffix.lower() == ".gz" else open
    try:
        with opener(path, "rt", encoding="utf-8", newline=newline) as f:
            yield f
    except UnicodeDecodeError:
        raise UserError(f"{path}: not UTF-8 text") from None
    except (EOFError, gzip.BadGzipFile, zlib.error):
        raise UserError(f"{path}: a truncated or damaged gzip file") from None


def _record(raw: dict, where: str, source: str, default_id: str, text_field: str, id_field: str) -> Record:
    text = raw.get(text_field)
    tokens = raw.get("tokens")
    if raw.get(id_field) is not None:
        rid = str(raw[id_field])
    elif id_field == DEFAULT_ID_FIELD:
        rid = default_id
    else:
        raise UserError(f"{where}: no id field {id_field!r}")
    if isinstance(text, str):
        return Record(rid, source, text=text, fields=raw)
    if isinstance(tokens, list) and all(isinstance(t, int) and not isinstance(t, bool) for t in tokens):
        return Record(rid, source, tokens=tokens, fields=raw)
    raise UserError(f"{where}: needs a string field {text_field!r} or a list of integer ids 'tokens'")


def jsonl_objects(path: Path) -> Iterator[tuple[str, int, dict]]:
    """(where, line number, object) per non-blank line of a JSONL file (gzip too);
    a line that is not a JSON object is a UserError naming it."""
    with _text_lines(path) as lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            where = f"{path}:{number}"
            try:
                raw = json.loads(line)
            except json.JSONDecodeError as e:
                raise UserError(f"{where}: malformed JSON ({e.msg} at column {e.colno})") from None
            except RecursionError:
                raise UserError(f"{where}: JSON nested too deeply to read") from None
            if not isinstance(raw, dict):
                raise UserError(f"{where}: each line must be a JSON object")
            yield where, number, raw


def _read_jsonl(path: Path, text_field: str, id_field: str) -> Iterator[Record]:
    for where, number, raw in jsonl_objects(path):
        yield _record(raw, where, str(path), f"{path.name}:{number}", text_field, id_field)


def csv_rows(path: Path, delimiter: str = ",") -> Iterator[tuple[int, dict]]:
    """(row number, row by column name) per data row of a CSV/TSV file with a header row
    (gzip too); a malformed file is a UserError naming the line."""
    with _text_lines(path, newline="") as f:
        rows = csv.DictReader(f, delimiter=delimiter)
        try:
            yield from enumerate(rows, 1)
        except csv.Error as e:
            raise UserError(f"{path} line {rows.line_num}: malformed CSV ({e})") from None


def _read_csv(path: Path, text_field: str, id_field: str, delimiter: str) -> Iterator[Record]:
    for number, raw in csv_rows(path, delimiter):
        yield _record(raw, f"{path} row {number}", str(path), f"{path.name}:{number}", text_field, id_field)


def _read_text(path: Path, split_lines: bool) -> Iterator[Record]:
    with _text_lines(path) as f:
        if not split_lines:
            yield Record(path.name, str(path), text=f.read())
            return
        for number, line in enumerate(f, 1):
            if line.strip():
                yield Record(f"{path.name}:{number}", str(path), text=line.rstrip("\n"))


def _rows(batches, where: str, text_field: str, id_field: str, source: str) -> Iterator[Record]:
    row = 0
    for batch in batches:
        for raw in batch.to_pylist():
            yield _record(raw, f"{where} row {row}", source, f"{Path(source).name}:{row}", text_field, id_field)
            row += 1


def _read_parquet(path: Path, text_field: str, id_field: str) -> Iterator[Record]:
    try:
        file = pq.ParquetFile(path)
    except Exception as e:
        raise UserError(f"{path}: not a readable Parquet file ({first_line(e)})") from None
    try:
        yield from _rows(file.iter_batches(batch_size=4096), str(path), text_field, id_field, str(path))
    except (pa.ArrowException, OSError) as e:
        raise UserError(f"{path}: a damaged Parquet file ({first_line(e)})") from None


def _read_dataset_folder(path: Path, text_field: str, id_field: str) -> Iterator[Record]:
    if not (path / "dataset_info.json").exists() and not (path / "dataset_dict.json").exists():
        raise UserError(f"{path}: a folder input must be written by datasets' save_to_disk")
    import datasets  # heavy import, only when a datasets folder is read

    try:
        loaded = datasets.load_from_disk(str(path))
    except Exception as e:  # datasets raises many kinds for a damaged folder
        raise UserError(f"{path}: not a readable datasets folder ({first_line(e)})") from None
    splits = loaded.items() if isinstance(loaded, datasets.DatasetDict) else [("", loaded)]
    for name, split in splits:
        where = f"{path}{'/' + name if name else ''}"
        yield from _rows(split.data.to_batches(max_chunksize=4096), where, text_field, id_field, where)
