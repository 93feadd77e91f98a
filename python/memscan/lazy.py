"""Package exports loaded on first use, so that importing a package (and the command
line, which imports every command) does not load torch until a command needs a model."""

from __future__ import annotations

import importlib
from collections.abc import Callable


def exports(package: str, where: dict[str, str]) -> Callable[[str], object]:
    """A module `__getattr__` giving each name of `where` (name -> module) on first access."""

    def __getattr__(name: str) -> object:
        if name not in where:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(where[name]), name)

    return __getattr__
