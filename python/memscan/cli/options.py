"""What every command shares: one-line errors with exit code 2, the options that recur
across commands (declared here once)."""

from __future__ import annotations

import math
import signal
import sys
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import NoReturn

import click
from click.core import ParameterSource

from memscan.errors import IndexCorruptError, UserError, first_line
from memscan.model.ranks import launched, leave_process_group, process_group_open
from memscan.scan.readers import DEFAULT_ID_FIELD
from memscan.unlearn.config import PRESETS

# The commands that, launched as several processes, split their work between them.
SPLIT_COMMANDS = {"attack", "memorization", "unlearn"}


class Memscan(click.Group):
    """Turns every error a user can act on, click's usage errors included, into one line
    on stderr and exit code 2; Ctrl-C and SIGTERM into `memscan: interrupted` (130), after
    the temporary files of unfinished writes are removed. A process that opened a
    process group leaves through `leave_process_group` with the same code."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode, **extra)
        try:
            code = self._exit_code(args, prog_name, complete_var, **extra)
        except SystemExit as e:
            if not process_group_open():
                raise
            code = e.code if isinstance(e.code, int) else int(e.code is not None)
        if process_group_open():
            leave_process_group(code)
        sys.exit(code)

    def _exit_code(self, args, prog_name, complete_var, **extra) -> int:
        with _sigterm_as_interrupt():
            try:
                result = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
            except click.exceptions.NoArgsIsHelpError as e:
                e.show()
                sys.exit(2)
            except click.ClickException as e:
                _fail(_usage_message(e))
            except (click.exceptions.Abort, KeyboardInterrupt) as e:
                if isinstance(e.__cause__, EOFError):  # click turns EOFError into Abort too
                    _fail(f"an input ended early ({first_line(e.__cause__)})")
                click.echo("memscan: interrupted", err=True)
                sys.exit(130)
        return result if isinstance(result, int) else 0

    def resolve_command(self, ctx, args):
        name, command, rest = super().resolve_command(ctx, args)
        if launched() and name not in SPLIT_COMMANDS:
            # Every process would do the whole work and write the same outputs.
            raise UserError(
                f"`memscan {name}` does not split its work across processes yet; under accelerate launch "
                f"or torchrun only {', '.join(sorted(SPLIT_COMMANDS))} does: run it as one process"
            )
        return name, command, rest

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except (UserError, IndexCorruptError, OSError) as e:
            _fail(str(e))
        except RecursionError:
            _fail("an input is nested too deeply to read")


def _fail(message: str) -> NoReturn:
    click.echo(f"memscan: error: {' '.join(message.split())}", err=True)
    sys.exit(2)


def _usage_message(e: click.ClickException) -> str:
    message = e.format_message()
    ctx = getattr(e, "ctx", None)
    if isinstance(e, click.UsageError) and ctx is not None:
        message += f" (see '{ctx.command_path} --help')"
    return message


@contextmanager
def _sigterm_as_interrupt():
    """SIGTERM unwinds like Ctrl-C, so `finally` blocks and atomic writes clean up."""

    def interrupt(_signum, _frame):
        raise KeyboardInterrupt

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


class Finite(click.FloatRange):
    """A finite number (nan and inf refused), optionally within a range."""

    name = "number"

    def convert(self, value, param, ctx):
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return number

    def _describe_range(self) -> str:
        """No range in the help of an unbounded number (click would print `x<=None`)."""
        return "" if self.min is None and self.max is None else super()._describe_range()


LARGEST_COUNT = 2**31 - 1  # what every count (tokens, threads, epochs, batch size) fits in


def count(minimum: int) -> click.IntRange:
    """A whole number from `minimum`, bounded so that no layer below overflows."""
    return click.IntRange(min=minimum, max=LARGEST_COUNT)


def comma_separated(values: tuple[str, ...]) -> list[str]:
    """The names of a repeatable option whose values may each hold several, comma-separated."""
    return [name.strip() for value in values for name in value.split(",") if name.strip()]


def output(help_text: str, default: Path | None = None, required: bool = True):
    """-o/--output: the file or folder a command creates."""
    return click.option(
        "-o",
        "--output",
        "out",
        required=required and default is None,
        default=default,
        show_default=default is not None,
        type=click.Path(path_type=Path),
        help=help_text,
    )


def tokenizer(default: str | None, help_text: str):
    return click.option("--tokenizer", default=default, show_default=default is not None, help=help_text)


threads = click.option(
    "--threads", type=click.IntRange(1, 4096), default=None, help="Worker threads (default: all cores)."
)
overwrite = click.option("--overwrite", is_flag=True, help="Replace an existing output.")
text_field = click.option(
    "--text-field", default="text", show_default=True, help="JSONL/CSV/Parquet field holding the text."
)
id_field = click.option(
    "--id-field",
    default=DEFAULT_ID_FIELD,
    show_default=True,
    help="Field holding each record's id; a field other than the default must be in every record "
    "(without the default's, a record is FILE:ROW).",
)
seed = click.option(
    "--seed", type=click.IntRange(0, 2**32 - 1), default=0, show_default=True, help="Seed of every random draw."
)
batch_size = click.option(
    "--batch-size", type=count(1), default=8, show_default=True, help="Sequences per forward pass."
)
device = click.option("--device", default=None, help="cuda, mps or cpu [default: the best available].")


def _ordered_interval(_ctx, _param, value: tuple[float, float] | None):
    if value is not None and not value[0] < value[1]:
        raise click.BadParameter(f"the lower end must be below the upper end, not {value[0]} {value[1]}")
    return value


fixed_interval = click.option(
    "--interval",
    "fixed_interval",
    type=Finite(),
    nargs=2,
    default=None,
    callback=_ordered_interval,
    help="Fix the acceptable interval instead of the unseen 2.5%/97.5% quantiles.",
)
max_tokens = click.option(
    "--max-tokens",
    type=click.IntRange(2, LARGEST_COUNT),
    default=None,
    help="Cut every sequence to its first N tokens.",
)
min_tokens = click.option(
    "--min-tokens",
    type=count(2),
    default=None,
    help="Leave out unseen sequences shorter than N tokens (after --max-tokens; the papers' Pile text holds a "
    "few short ones). The forget set is kept whole.",
)
preset = click.option(
    "--preset",
    type=click.Choice(list(PRESETS)),
    default="default",
    show_default=True,
    help="paper: every choice as the authors made it (150 epochs, the interval fixed at [0.15, 0.60]); "
    "options given explicitly still win.",
)


def apply_preset(ctx: click.Context, settings: dict) -> dict:
    """`settings` (the command's parameters, `preset` among them) with the preset's values
    in place of every default the user did not override on the command line."""
    chosen = PRESETS[settings.pop("preset")]
    return {
        name: chosen[name] if name in chosen and ctx.get_parameter_source(name) is ParameterSource.DEFAULT else value
        for name, value in settings.items()
    }


ENGINES = ("local", "ray")
engine = click.option(
    "--engine",
    type=click.Choice(ENGINES),
    default="local",
    show_default=True,
    help="ray: spread the corpus work over a Ray cluster (pip install 'memscan[ray]').",
)
ray_address = click.option(
    "--address",
    "ray_address",
    default=None,
    help="With --engine ray: the cluster's head (HOST:PORT, ray://HOST:PORT or auto) [default: start one here].",
)
ray_workers = click.option(
    "--workers",
    "ray_workers",
    type=count(1),
    default=None,
    help="With --engine ray: actors serving the index's shards [default: the cluster's CPUs / --threads].",
)


def check_engine(engine_name: str, address: str | None, workers: int | None = None) -> None:
    """Refuse Ray settings given without `--engine ray` (they would silently do nothing)."""
    if engine_name != "ray" and (address is not None or workers is not None):
        raise UserError("--address and --workers apply to --engine ray only")


def served(index, engine_name: str, address: str | None, workers: int | None, threads: int | None):
    """The opened index itself, or with --engine ray the same index served by Ray actors."""
    if engine_name != "ray":
        return index
    from memscan.cluster.ray_query import RayIndex

    return RayIndex(index, address, workers, threads or 1)
