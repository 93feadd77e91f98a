"""Progress bars on stderr for long work, closed whatever happens."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from tqdm import tqdm

# A bar appears only for work that lasts: a command that fails at once prints its error alone.
SHOW_AFTER_S = 1.0


@contextmanager
def progress_bars() -> Iterator[Callable[[str, int | None], Callable[[int], object]]]:
    """A factory of progress bars, `open(name, total) -> update`; every bar it opened
    is closed when the block ends (total None: not known in advance). Use it for every progress bar."""
    bars: list[tqdm] = []

    def open_bar(name: str, total: int | None) -> Callable[[int], object]:
        bar = tqdm(total=total, desc=name, unit=" seq", file=sys.stderr, leave=False, delay=SHOW_AFTER_S)
        bars.append(bar)
        return bar.update

    try:
        yield open_bar
    finally:
        for bar in bars:
            bar.close()
