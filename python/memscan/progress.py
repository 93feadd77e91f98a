"""Progress bars on stderr for long work, closed whatever happens."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from tqdm import tqdm


@contextmanager
def progress_bars() -> Iterator[Callable[[str, int], Callable[[int], object]]]:
    """A factory of progress bars, `open(name, total) -> update`; every bar it opened
    is closed when the block ends."""
    bars: list[tqdm] = []

    def open_bar(name: str, total: int) -> Callable[[int], object]:
        bar = tqdm(total=total, desc=name, unit=" seq", file=sys.stderr, leave=False)
        bars.append(bar)
        return bar.update

    try:
        yield open_bar
    finally:
        for bar in bars:
            bar.close()
