"""`memscan audit`: find what MODEL memorized from an indexed corpus, forget it, prove it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import click

from memscan import io
from memscan.cli import options
from memscan.errors import UserError
from memscan.model.choices import DEFAULT_MODEL
from memscan.model.interval import MIN_UNSEEN
from memscan.progress import progress_bars
from memscan.unlearn.config import METHODS, RETAIN_METHODS


@click.command()
@click.argument("model", default=DEFAULT_MODEL)
@click.option(
    "--index",
    "index_dir",
    required=True,
    type=click.Path(path_type=Path),
    help="Corpus index built with MODEL's tokenizer.",
)
@options.output("Folder to create (or to resume an unfinished audit in).")
@click.option(
    "--prompts", type=options.count(1), default=1000, show_default=True, help="Corpus windows to prompt with."
)
@click.option("--k", type=options.count(1), default=32, show_default=True, help="Prompt tokens.")
@click.option("--m", type=options.count(1), default=32, show_default=True, help="Generated tokens per prompt.")
@click.option(
    "--samples",
    type=options.count(0),
    default=0,
    show_default=True,
    help="Sampled continuations per prompt, besides the greedy one.",
)
@click.option(
    "--temperature",
    type=options.Finite(0.0, min_open=True),
    default=1.0,
    show_default=True,
    help="Of sampled generations.",
)
@click.option(
    "--free", type=options.count(0), default=0, show_default=True, help="Sampled generations from an empty context."
)
@click.option(
    "--min-span",
    type=options.count(1),
    default=32,
    show_default=True,
    help="A corpus span this long in a generation counts as memorized (besides reproducing its own continuation).",
)
@click.option(
    "--min-distinct-share",
    type=options.Finite(0.0, 1.0),
    default=0.25,
    show_default=True,
    help="A generation with fewer distinct tokens than this share is repetition, never memorized.",
)
@click.option(
    "--max-region-tokens",
    type=options.count(2),
    default=256,
    show_default=True,
    help="Cut longer memorized regions into pieces.",
)
@click.option(
    "--unseen",
    "unseen_path",
    type=click.Path(path_type=Path),
    default=None,
    help="Unseen set for the interval [default: windows whose prompts were never memorized].",
)
@click.option(
    "--unseen-count",
    type=options.count(MIN_UNSEEN),
    default=100,
    show_default=True,
    help="Never-memorized windows taken as the unseen set.",
)
@options.max_tokens
@options.text_field
@options.id_field
@click.option(
    "--method",
    type=click.Choice([m for m in METHODS if m not in RETAIN_METHODS]),
    default="sga",
    show_default=True,
    help="Unlearning method (SGA: best in memscan's sweeps at 135M).",
)
@click.option(
    "--lr", type=options.Finite(min=0, min_open=True), default=5e-5, show_default=True, help="Unlearning: Adam's rate."
)
@click.option(
    "--max-epochs", type=options.count(1), default=20, show_default=True, help="Unlearning: at most this many."
)
@click.option(
    "--fresh-prompts",
    type=options.count(0),
    default=1000,
    show_default=True,
    help="Further windows the unlearned model is prompted with.",
)
@click.option(
    "--miau-neighbours",
    type=options.count(0),
    default=10,
    show_default=True,
    help="MIAU neighbours per candidate (0 skips it).",
)
@click.option(
    "--tasks",
    "task_values",
    multiple=True,
    default=["arc_easy,lambada,novels"],
    show_default=True,
    help="Utility tasks before and after (as in `memscan eval`; '' for none).",
)
@click.option("--task-limit", type=options.count(1), default=100, show_default=True, help="Items per task.")
@click.option("--find-only", is_flag=True, help="Stop after finding and ranking the memorized regions.")
@click.option("--batch-size", type=options.count(1), default=64, show_default=True, help="Generation rows per batch.")
@click.option(
    "--chunk", type=options.count(1), default=512, show_default=True, help="Prompts per resumable part of a find."
)
@options.engine
@options.ray_address
@options.ray_workers
@options.seed
@options.device
@options.overwrite
def audit(
    model,
    index_dir,
    out,
    unseen_path,
    max_tokens,
    text_field,
    id_field,
    method,
    lr,
    max_epochs,
    task_values,
    task_limit,
    engine,
    ray_address,
    ray_workers,
    seed,
    device,
    overwrite,
    **settings,
):
    """Find what MODEL memorized from the corpus in --index, forget it per sequence, and prove it.

    Writes OUT/report.md with plots, Parquet tables for every step and the unlearned
    model in OUT/forget/model; rerun the same command to resume an interrupted audit.
    """
    from memscan.experiment.audit import AuditInputs, AuditOptions, FindOptions, is_resumable, plan_audit, run_audit
    from memscan.model.loading import check_model_spec, load_tokenizer
    from memscan.model.sequences import read_set
    from memscan.scan.index import CorpusIndex
    from memscan.scan.tokenizer import LoadedTokenizer
    from memscan.unlearn.config import UnlearnConfig

    options.check_engine(engine, ray_address, ray_workers)
    inputs_on_disk = [index_dir, model, unseen_path]
    io.check_apart(out, inputs_on_disk)
    if out.exists() and not (overwrite or is_resumable(out)):
        raise UserError(f"{out} already exists and holds no audit to resume (pass --overwrite to replace it)")
    if out.exists() and is_resumable(out) and not overwrite and _finished(out):
        raise UserError(f"{out} already holds a finished audit (pass --overwrite to replace it)")
    if not out.parent.exists():
        raise UserError(f"{out.parent}: no such directory")
    find = FindOptions(
        k=settings["k"],
        m=settings["m"],
        samples=settings["samples"],
        temperature=settings["temperature"],
        free=settings["free"],
        min_span=settings["min_span"],
        min_distinct_share=settings["min_distinct_share"],
        batch_size=settings["batch_size"],
        chunk=settings["chunk"],
        seed=seed,
    )
    audit_options = AuditOptions(
        find=find,
        prompts=settings["prompts"],
        fresh_prompts=settings["fresh_prompts"],
        max_region_tokens=settings["max_region_tokens"],
        unseen_count=settings["unseen_count"],
        miau_neighbours=settings["miau_neighbours"],
        tasks=tuple(options.comma_separated(task_values)),
        task_limit=task_limit,
        find_only=settings["find_only"],
    )
    config = UnlearnConfig(method=method, lr=lr, max_epochs=max_epochs, seed=seed)
    unseen = read_set(unseen_path, text_field, id_field) if unseen_path is not None else None
    check_model_spec(model)
    index = CorpusIndex.open(index_dir)
    tokenizer = load_tokenizer(model)
    index.check_tokenizer(LoadedTokenizer(model, tokenizer.backend_tokenizer).identity())
    index = options.served(index, engine, ray_address, ray_workers, None)
    inputs = AuditInputs(model, index, device, unseen, max_tokens)
    plan = plan_audit(inputs, audit_options)
    if overwrite and out.exists():
        shutil.rmtree(out)
    with progress_bars() as progress:
        folder = run_audit(inputs, plan, audit_options, config, out, progress, log=lambda m: click.echo(m, err=True))
    summary = json.loads((out / "summary.json").read_text())
    click.echo(
        f"found {summary['regions']} memorized regions ({summary['memorized_generations']} of "
        f"{summary['generations']} generations reproduced the corpus)"
    )
    verified = summary.get("verify")
    if verified:
        click.echo(
            f"after {config.method}: {verified['regions_remaining']} of {verified['regions']} regions still reproduced; "
            f"c(D_f) {verified['c_df_before']['above']} -> {verified['c_df_after']['above']} above, "
            f"{verified['c_df_after']['below']} below"
        )
    click.echo(f"wrote {folder.path}/report.md")


def _finished(out: Path) -> bool:
    from memscan.experiment.audit.run import STATE_FILE

    return "report" in json.loads((out / STATE_FILE).read_text()).get("steps", {})
