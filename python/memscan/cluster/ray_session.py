"""Connecting to Ray: a missing install or an unreachable cluster is one line, not a hang."""

from __future__ import annotations

import logging
import socket
from types import ModuleType

from memscan.errors import UserError, first_line

INSTALL_HINT = "pip install 'memscan[ray]'"
REACH_TIMEOUT_S = 5.0
DEFAULT_RAY_CLIENT_PORT = 10001
DEFAULT_GCS_PORT = 6379


def ray_module() -> ModuleType:
    try:
        import ray
    except ImportError:
        raise UserError(f"--engine ray needs Ray, which is not installed: {INSTALL_HINT}") from None
    return ray


def connect(address: str | None = None) -> ModuleType:
    """Ray, connected: to the cluster at `address` (host:port of its head, `ray://host:port`
    for Ray Client, or `auto`), else a local one started in this process (or the one
    RAY_ADDRESS names). Reuses a connection already made in this process."""
    ray = ray_module()
    if address and address != "auto":
        _check_reachable(address)
    if ray.is_initialized():
        return ray
    try:
        ray.init(address=address, include_dashboard=False, logging_level=logging.ERROR, log_to_driver=False)
    except ConnectionError as e:
        raise UserError(f"cannot connect to a Ray cluster at {address or 'RAY_ADDRESS'}: {e}") from None
    return ray


def _check_reachable(address: str) -> None:
    """Ray retries an unreachable head for minutes; a plain TCP connect answers in seconds."""
    client = address.startswith("ray://")
    host_port = address.removeprefix("ray://")
    host, _, port_text = host_port.rpartition(":")
    if not host:
        host, port_text = host_port, ""
    try:
        port = int(port_text) if port_text else (DEFAULT_RAY_CLIENT_PORT if client else DEFAULT_GCS_PORT)
    except ValueError:
        raise UserError(f"--address {address!r}: expected HOST:PORT, ray://HOST:PORT or auto") from None
    try:
        with socket.create_connection((host, port), timeout=REACH_TIMEOUT_S):
            pass
    except OSError as e:
        raise UserError(f"cannot reach a Ray cluster at {address} ({e.strerror or e})") from None


def task_error(ray: ModuleType, error: BaseException, what: str) -> BaseException:
    """The exception a failed task raised in its worker (a UserError stays one) instead of
    Ray's wrapper with the remote traceback in its message; Ray's own failures (a worker
    that died past its retries, a lost node) as one line naming `what` the task was."""
    if isinstance(error, ray.exceptions.RayTaskError) and error.cause is not None:
        return error.cause
    if isinstance(error, ray.exceptions.RayError):
        return UserError(f"Ray could not finish {what}: {first_line(error)}")
    return error
