"""Errors a user can act on. The command line prints them as one line and exits 2."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from memscan._core import IndexCorruptError

T = TypeVar("T")


class UserError(Exception):
    """Bad input: a missing file, a malformed record, a mismatched tokenizer, ..."""


def core_call(call: Callable[..., T], *args) -> T:
    """Call into the Rust core, turning its ValueError (bad input) into a UserError; a
    damaged index stays an IndexCorruptError."""
    try:
        return call(*args)
    except IndexCorruptError:
        raise
    except ValueError as e:
        raise UserError(str(e)) from None
    except OverflowError:
        raise UserError("a number is too large for memscan's core (ids and counts must fit in 64 bits)") from None


def first_line(e: BaseException) -> str:
    """The first line of an exception's message (its type's name when it has none), for one-line errors."""
    lines = str(e).strip().splitlines()
    return lines[0] if lines else type(e).__name__


__all__ = ["IndexCorruptError", "UserError", "core_call", "first_line"]
