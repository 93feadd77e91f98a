"""Writing results without ever losing what a user already had: refuse to overwrite
unless asked, and write through a temporary file renamed into place."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from memscan.errors import UserError


def check_new(path: Path, overwrite: bool) -> None:
    if path.exists() and not overwrite:
        raise UserError(f"{path} already exists (pass --overwrite to replace it)")
    if not path.parent.exists():
        raise UserError(f"{path.parent}: no such directory")


def _atomic(path: Path, write) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_parquet(table: pa.Table, path: Path) -> None:
    _atomic(path, lambda tmp: pq.write_table(table, tmp))


def write_jsonl(table: pa.Table, path: Path) -> None:
    def write(tmp):
        with open(tmp, "w", encoding="utf-8") as f:
            for row in table.to_pylist():
                f.write(json.dumps(row, ensure_ascii=False) + "\n")

    _atomic(path, write)


def write_text(text: str, path: Path) -> None:
    _atomic(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


def make_output_dir(path: Path, overwrite: bool = False) -> None:
    """Create the output folder `path` (refused when it exists, unless `overwrite`)."""
    check_new(path, overwrite)
    path.mkdir(parents=True, exist_ok=True)
