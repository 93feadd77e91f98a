"""Running the `memscan` command in tests: in process through click's CliRunner (fast,
for outputs and error paths), or as a real process (for what needs one: kill -9,
`python -m memscan.cli`)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass

from click.testing import CliRunner

from memscan.cli import main

MEMSCAN = [sys.executable, "-m", "memscan.cli"]


@dataclass
class Outcome:
    returncode: int
    stdout: str
    stderr: str


def memscan(*args) -> Outcome:
    """The command in this process; an exception that escapes it is re-raised, so a
    traceback a user would see fails the test with that traceback."""
    result = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=True)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return Outcome(result.exit_code, result.stdout, result.stderr)


def memscan_process(*args, env=None, cwd=None) -> Outcome:
    """The command as a separate process."""
    result = subprocess.run(
        [*MEMSCAN, *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
    )
    return Outcome(result.returncode, result.stdout, result.stderr)


def fails_cleanly(result: Outcome, message: str) -> None:
    """Exit code 2 and exactly one `memscan: error:` line holding `message`, no traceback."""
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("memscan: error:")]
    assert len(lines) == 1 and message in lines[0], result.stderr


def write_jsonl(path, rows) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
