"""Writing results without ever losing what a user already had: refuse to overwrite
unless asked, never write over (or into, or around) an input, and write through
temporary files renamed into place only once every file of a result is complete."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

import pyarrow as pa
import pyarrow.parquet as pq

from memscan.errors import UserError

Writer = Callable[[str], None]  # writes a whole file at the path it is given


def check_apart(path: Path, inputs: Iterable[str | Path | None]) -> None:
    """Refuse an output that is, holds or lies inside one of `inputs` (those that exist)."""
    for given in inputs:
        if given is not None and Path(given).exists() and _overlap(Path(path), Path(given)):
            raise UserError(f"the output {path} would overwrite the input {given}: choose another output path")


def check_new(path: Path, overwrite: bool, inputs: Iterable[str | Path | None] = ()) -> None:
    """Refuse an output that exists (unless `overwrite`), lacks its parent folder, or is,
    holds or lies inside one of `inputs` (with or without `overwrite`)."""
    check_apart(path, inputs)
    if path.exists() and not overwrite:
        raise UserError(f"{path} already exists (pass --overwrite to replace it)")
    if not path.parent.exists():
        raise UserError(f"{path.parent}: no such directory")


def _overlap(a: Path, b: Path) -> bool:
    a, b = a.resolve(), b.resolve()
    return a == b or a in b.parents or b in a.parents


@contextmanager
def staged(paths: Sequence[Path]) -> Iterator[list[str]]:
    """Temporary files beside `paths` for a block to write (e.g. streamed, part by part),
    renamed into place together when it ends without error and removed otherwise."""
    temps: list[str] = []
    try:
        for path in paths:
            try:
                fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
            except OSError as e:
                raise UserError(f"cannot write {path}: {e.strerror}") from None
            os.close(fd)
            temps.append(tmp)
        try:
            yield temps
        except OSError as e:
            raise UserError(f"cannot write {', '.join(map(str, paths))}: {e.strerror or e}") from None
        for tmp, path in zip(temps, paths):
            os.replace(tmp, path)
    finally:
        for tmp in temps:
            Path(tmp).unlink(missing_ok=True)


def commit(files: dict[Path, Writer]) -> None:
    """Write each file to a temporary beside it, then rename them all into place: an
    interruption or a failure before the renames leaves none of them and no temporary."""
    paths = list(files)
    with staged(paths) as temps:
        for tmp, path in zip(temps, paths):
            files[path](tmp)


def parquet(table: pa.Table) -> Writer:
    return lambda tmp: pq.write_table(table, tmp)


def jsonl(table: pa.Table) -> Writer:
    def write(tmp):
        with open(tmp, "w", encoding="utf-8") as f:
            append_jsonl(table, f)

    return write


def append_jsonl(table: pa.Table, file: TextIO) -> None:
    """One JSON object per row of `table`, appended to an open text file."""
    for row in table.to_pylist():
        file.write(json.dumps(row, ensure_ascii=False) + "\n")


def text(content: str) -> Writer:
    def write(tmp):
        Path(tmp).write_text(content, encoding="utf-8")

    return write


def write_parquet(table: pa.Table, path: Path) -> None:
    commit({path: parquet(table)})


def write_jsonl(table: pa.Table, path: Path) -> None:
    commit({path: jsonl(table)})


def write_text(content: str, path: Path) -> None:
    commit({path: text(content)})


def make_output_dir(path: Path, overwrite: bool = False, inputs: Iterable[str | Path | None] = ()) -> None:
    """Create the output folder `path` (refused when it exists, unless `overwrite`)."""
    check_new(path, overwrite, inputs)
    path.mkdir(parents=True, exist_ok=True)
