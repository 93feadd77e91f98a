"""Where memscan keeps what it builds once and reuses: converted models, built-in indexes."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """`$MEMSCAN_CACHE`, else ~/.cache/memscan."""
    return Path(os.environ.get("MEMSCAN_CACHE", Path.home() / ".cache" / "memscan"))
