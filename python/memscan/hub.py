"""Whether the Hugging Face hub can serve an id: from the local cache, or over a network
that answers. Checked before any download is attempted, so an offline machine gets a
one-line error at once instead of a minute of retries."""

from __future__ import annotations

import functools
import re
import socket
from urllib.parse import urlparse

HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")


def available(repo_id: str, files: tuple[str, ...]) -> bool:
    """`repo_id` has one of `files` in the local hub cache, or the hub can be reached."""
    return _cached(repo_id, files) or reachable()


def _cached(repo_id: str, files: tuple[str, ...]) -> bool:
    from huggingface_hub import try_to_load_from_cache

    return any(isinstance(try_to_load_from_cache(repo_id, name), str) for name in files)


@functools.cache
def reachable(timeout: float = 3.0) -> bool:
    """False when HF_HUB_OFFLINE is set or one connection attempt to the hub fails; asked
    once per process (a command checks a name, then loads it: one probe serves both)."""
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        return False
    host = urlparse(constants.ENDPOINT).hostname or "huggingface.co"
    try:
        socket.create_connection((host, 443), timeout=timeout).close()
    except OSError:
        return False
    return True
