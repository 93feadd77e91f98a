"""`memscan eval`: a model's utility on tasks."""

from __future__ import annotations

import json

import click

from memscan import io
from memscan.cli import options
from memscan.eval.tasks import DECODINGS, PAPER_SUITE
from memscan.model.choices import DEFAULT_MODEL


@click.command("eval")
@click.argument("model", default=DEFAULT_MODEL)
@options.output("Folder to create for utility.parquet/.csv/.md and the per-item tables.")
@click.option(
    "--tasks",
    "task_values",
    multiple=True,
    default=[",".join(PAPER_SUITE)],
    show_default=True,
    help="Comma-separated: built-in names, JSONL task files, the papers' files as NAME=PATH "
    "(pubmedqa, lambada, the dialogue sets, pile, wikitext, dm_mathematics), mathqa (from the hub), or lm-eval:<task>.",
)
@click.option("--limit", type=options.count(1), default=None, help="Items per task, drawn with --seed [default: all].")
@click.option(
    "--decoding",
    type=click.Choice(DECODINGS),
    default="greedy",
    show_default=True,
    help="How answers are generated; dpd: sampled as the papers' private decoding (lambda 0.2, top 50), seeded "
    "with --seed, to score the DPD baseline's replies as the authors did.",
)
@options.seed
@options.tokenizer(None, "Tokenizer folder or hub id [default: the model's].")
@options.device
@options.batch_size
@options.overwrite
def eval_command(model, out, task_values, limit, decoding, seed, tokenizer, device, batch_size, overwrite):
    """Utility of MODEL: multiple choice by total and length-normalised NLL, LAMBADA, CoQA F1, perplexity."""
    from memscan.eval import EvalOptions, evaluate_tasks, resolve_tasks, utility_table, write_utility
    from memscan.model.loading import check_model_spec, load_model

    names = options.comma_separated(task_values)
    tasks, harness = resolve_tasks(names)
    inputs = [model, tokenizer, *names]
    io.check_new(out, overwrite, inputs)
    check_model_spec(model)  # before the line below: an unknown model's error is the only line
    click.echo(f"loading {model}…", err=True)
    loaded = load_model(model, device, tokenizer)
    eval_options = EvalOptions(limit=limit, seed=seed, batch_size=batch_size, decoding=decoding)
    result = evaluate_tasks(loaded, tasks, eval_options, harness)
    io.make_output_dir(out, overwrite, inputs)
    write_utility(result, out)
    settings = {"model": model, "tasks": names, "limit": limit, "seed": seed, "decoding": decoding}
    io.write_text(json.dumps(settings, indent=2), out / "run.json")
    click.echo(utility_table(result.metrics))
    click.echo(f"wrote {out}/utility.parquet, utility.csv, utility.md", err=True)
