"""`memscan demo | scan-demo | audit-demo | sweep`: the experiments, each a call into memscan.experiment."""

from __future__ import annotations

import math
from pathlib import Path

import click

from memscan.cli import options


@click.command()
@options.output("Folder to create for the report, tables and plots.", default=Path("memscan-demo"))
@click.option(
    "--max-epochs", type=options.count(1), default=10, show_default=True, help="At most this many epochs per method."
)
@options.overwrite
def demo(out, max_epochs, overwrite):
    """The main job on the built-in model: implant KJV passages, measure, unlearn with GA/SGA/TA/TAU, report."""
    from memscan.experiment.demo import DemoSettings, run_demo

    run_demo(out, DemoSettings(max_epochs=max_epochs), overwrite)


@click.command("scan-demo")
@options.output("Folder to create for the report and tables.", default=Path("memscan-scan-demo"))
@options.threads
@options.overwrite
def scan_demo(out, threads, overwrite):
    """The scanner alone on built-in data: index the KJV, scan texts against it, write a report."""
    from memscan.experiment.scan_demo import run_demo

    run_demo(out, threads=threads, overwrite=overwrite)


@click.command("audit-demo")
@options.output(
    "Folder to create for the implanted model, the corpus index and the audit.", default=Path("memscan-audit-demo")
)
@options.device
@options.overwrite
def audit_demo(out, device, overwrite):
    """The audit on the built-in model where the answer is known: implant KJV passages, audit, forget, verify."""
    from memscan.experiment.audit_demo import AuditDemoSettings, run_audit_demo

    run_audit_demo(out, AuditDemoSettings(), overwrite, device)


@click.command()
@click.argument("config", type=click.Path(path_type=Path))
@options.output("Sweep folder: created, or resumed when it holds this config's sweep.")
@click.option(
    "--shard",
    default="0/1",
    show_default=True,
    metavar="I/N",
    help="Run only every N-th (model, forget size, seed) group, from the I-th (0-based): start N processes on one "
    "folder, e.g. one per GPU with CUDA_VISIBLE_DEVICES.",
)
@click.option(
    "--checkpoint-every",
    "checkpoint_seconds",
    type=options.Finite(min=0),
    default=None,
    help="Checkpoint a cell's unlearning at most this often (seconds; under OUT/checkpoints, removed once the "
    "cell is written), so an interrupted cell goes on from there [default: none; a checkpoint left by an "
    "earlier run is resumed anyway].",
)
def sweep(config, out, shard, checkpoint_seconds):
    """Every (model, forget-set size, seed, method) cell of CONFIG (TOML); resumes where it stopped."""
    from memscan import io
    from memscan.experiment.sweep import read_config, run_sweep

    part = _shard(shard)
    io.check_apart(out, [config])
    run_sweep(read_config(config), out, part, math.inf if checkpoint_seconds is None else checkpoint_seconds)


def _shard(value: str) -> tuple[int, int]:
    from memscan.errors import UserError

    i, _, n = value.partition("/")
    if not (i.isdigit() and n.isdigit() and int(i) < int(n)):
        raise UserError(f"--shard must be I/N with 0 <= I < N, not {value!r}")
    return int(i), int(n)
