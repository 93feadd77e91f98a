"""The utility-side commands: `eval` (a model on tasks) and `sweep` (the solution-space grid)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from memscan import io
from memscan.cli_model import new_output_dir, output_option
from memscan.models import DEFAULT_MODEL
from memscan.tasks import PAPER_SUITE


def _task_names(values: tuple[str, ...]) -> list[str]:
    return [name.strip() for value in values for name in value.split(",") if name.strip()]


@click.command("eval")
@click.argument("model", default=DEFAULT_MODEL)
@output_option("Folder to create for utility.parquet/.csv/.md and the per-item tables.")
@click.option("--tasks", "task_values", multiple=True, default=[",".join(PAPER_SUITE)], show_default=True,
              help="Comma-separated: built-in names, JSONL task files, or lm-eval:<task>.")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Items per task, drawn with --seed [default: all].")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--tokenizer", default=None, help="Tokenizer folder or hub id [default: the model's].")
@click.option("--device", default=None, help="cuda, mps or cpu [default: the best available].")
@click.option("--batch-size", type=click.IntRange(min=1), default=8, show_default=True)
@click.option("--overwrite", is_flag=True)
def eval_command(model, out, task_values, limit, seed, tokenizer, device, batch_size, overwrite):
    """Utility of MODEL: multiple choice by total and length-normalised NLL, LAMBADA, CoQA F1, perplexity."""
    from memscan.models import load_model
    from memscan.utility import EvalOptions, evaluate_tasks, resolve_tasks, utility_table, write_utility

    names = _task_names(task_values)
    tasks, harness = resolve_tasks(names)
    io.check_new(out, overwrite)
    click.echo(f"loading {model}…", err=True)
    loaded = load_model(model, device, tokenizer)
    result = evaluate_tasks(loaded, tasks, EvalOptions(limit=limit, seed=seed, batch_size=batch_size), harness)
    new_output_dir(out, overwrite)
    write_utility(result, out)
    settings = {"model": model, "tasks": names, "limit": limit, "seed": seed}
    io.write_text(json.dumps(settings, indent=2), out / "run.json")
    click.echo(utility_table(result.metrics))
    click.echo(f"wrote {out}/utility.parquet, utility.csv, utility.md", err=True)


@click.command()
@click.argument("config", type=click.Path(path_type=Path))
@output_option("Sweep folder: created, or resumed when it holds this config's sweep.")
def sweep(config, out):
    """Every (model, forget-set size, seed, method) cell of CONFIG (TOML); resumes where it stopped."""
    from memscan.sweep import read_config, run_sweep

    run_sweep(read_config(config), out)
