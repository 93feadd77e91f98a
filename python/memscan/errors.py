"""Errors a user can act on. The command line prints them as one line and exits 2."""

from memscan._core import IndexCorruptError


class UserError(Exception):
    """Bad input: a missing file, a malformed record, a mismatched tokenizer, ..."""


__all__ = ["IndexCorruptError", "UserError"]
