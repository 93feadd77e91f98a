"""The `memscan` command: one module per command group, shared options in `options`."""

from __future__ import annotations

import click

from memscan.cli import audit, experiment, index, model, options, score
from memscan.cli import eval as eval_commands


@click.group(cls=options.Memscan, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="memscan")
def main():
    """Measure and remove verbatim memorization in language models, one sequence at a time."""


for command in (
    index.index,
    score.score,
    model.memorization,
    model.attack,
    model.unlearn,
    eval_commands.eval_command,
    experiment.demo,
    experiment.scan_demo,
    experiment.audit_demo,
    experiment.sweep,
    audit.audit,
):
    main.add_command(command)
