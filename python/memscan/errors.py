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


__all__ = ["IndexCorruptError", "UserError", "core_call"]
