"""What every command shares: one-line errors with exit code 2, the options that recur
across commands (declared here once)."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from click.core import ParameterSource

from memscan.errors import IndexCorruptError, UserError
from memscan.unlearn.config import PRESETS


class Memscan(click.Group):
    """Turns every error a user can act on into one line on stderr and exit code 2."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except (UserError, IndexCorruptError, OSError) as e:
            click.echo(f"memscan: error: {e}", err=True)
            sys.exit(2)
        except KeyboardInterrupt:
            click.echo("memscan: interrupted", err=True)
            sys.exit(130)


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
    "--threads", type=click.IntRange(min=1), default=None, help="Worker threads (default: all cores)."
)
overwrite = click.option("--overwrite", is_flag=True, help="Replace an existing output.")
text_field = click.option(
    "--text-field", default="text", show_default=True, help="JSONL/Parquet field holding the text."
)
id_field = click.option("--id-field", default="id", show_default=True, help="Field holding each record's id.")
seed = click.option("--seed", type=int, default=0, show_default=True, help="Seed of every random draw.")
batch_size = click.option(
    "--batch-size", type=click.IntRange(min=1), default=8, show_default=True, help="Sequences per forward pass."
)
device = click.option("--device", default=None, help="cuda, mps or cpu [default: the best available].")
fixed_interval = click.option(
    "--interval",
    "fixed_interval",
    type=float,
    nargs=2,
    default=None,
    help="Fix the acceptable interval instead of the unseen 2.5%/97.5% quantiles.",
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
