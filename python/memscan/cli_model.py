"""The model-side commands: `memorization`, `attack`, `unlearn` and `demo`."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
from tqdm import tqdm

from memscan import io
from memscan.errors import UserError
from memscan.interval import check_unseen_count, fit_interval, forgetting_quality
from memscan.models import DEFAULT_MODEL

INTERVAL_HELP = "Fix the acceptable interval instead of the unseen 2.5%/97.5% quantiles."


def model_inputs(command):
    """MODEL, --forget, --unseen and how to load and cut them: shared by every model command."""
    options = [
        click.argument("model", default=DEFAULT_MODEL),
        click.option("--forget", "forget_path", required=True, type=click.Path(path_type=Path), help="Forget set (JSONL/txt/Parquet; text or token ids)."),
        click.option("--unseen", "unseen_path", required=True, type=click.Path(path_type=Path), help="Unseen sequences of the same source (>= 20)."),
        click.option("--tokenizer", default=None, help="Tokenizer folder or hub id [default: the model's]."),
        click.option("--device", default=None, help="cuda, mps or cpu [default: the best available]."),
        click.option("--max-tokens", type=click.IntRange(min=2), default=None, help="Cut every sequence to this many tokens."),
        click.option("--text-field", default="text", show_default=True),
        click.option("--id-field", default="id", show_default=True),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def output_option(help_text: str):
    return click.option("-o", "--output", "out", required=True, type=click.Path(path_type=Path), help=help_text)


def load_inputs(model, forget_path, unseen_path, tokenizer, device, max_tokens, text_field, id_field, n: int):
    """The model and both sets, with every check that needs no scoring."""
    from memscan.memorization import check_sequences
    from memscan.models import load_model
    from memscan.sequences import check_disjoint, read_sequences

    for path in (forget_path, unseen_path):
        if not path.exists():
            raise UserError(f"{path}: no such file or directory")
    click.echo(f"loading {model}…", err=True)
    loaded = load_model(model, device, tokenizer)
    forget = read_sequences(forget_path, loaded, max_tokens, text_field, id_field)
    unseen = read_sequences(unseen_path, loaded, max_tokens, text_field, id_field)
    check_sequences(*forget, n, "forget")
    check_sequences(*unseen, n, "unseen")
    check_unseen_count(len(unseen[1]))  # before any scoring, so a small set costs no model time
    check_disjoint(forget, unseen)
    click.echo(f"{loaded.name} on {loaded.device}: {len(forget[1])} forget and {len(unseen[1])} unseen sequences", err=True)
    return loaded, forget, unseen


def new_output_dir(out: Path, overwrite: bool = False) -> None:
    io.check_new(out, overwrite)
    out.mkdir(parents=True, exist_ok=True)


def progress_bars(name: str, total: int):
    bar = tqdm(total=total, desc=name, unit=" seq", file=sys.stderr, leave=False)
    return bar.update


@click.command()
@model_inputs
@output_option("Folder to create for the per-sequence tables and the report.")
@click.option("--n", type=click.IntRange(min=0), default=10, show_default=True, help="EL_n's n (0 skips EL).")
@click.option("--k", type=click.IntRange(min=0), default=32, show_default=True, help="Prompt length of k-extractability (0 skips it).")
@click.option("--score", "g_score", type=click.Choice(["ma", "el", "extraction_strength"]), default="ma", show_default=True, help="Which score is g.")
@click.option("--interval", "fixed", type=float, nargs=2, default=None, help=INTERVAL_HELP)
@click.option("--index", "index_dir", type=click.Path(path_type=Path), default=None, help="Match the k-prompt generations against this corpus index.")
@click.option("--corpus-k", type=click.IntRange(min=1), default=32, show_default=True, help="Span length that counts as a corpus match.")
@click.option("--batch-size", type=click.IntRange(min=1), default=8, show_default=True)
@click.option("--overwrite", is_flag=True)
def memorization(model, forget_path, unseen_path, tokenizer, device, max_tokens, text_field, id_field, out, n, k, g_score, fixed, index_dir, corpus_k, batch_size, overwrite):
    """Per-sequence memorization of the forget and unseen sets, the interval, and c(D_f)."""
    from memscan.index import CorpusIndex
    from memscan.memorization import MemorizationOptions, g_column, memorization_table
    from memscan.tokenizer import LoadedTokenizer

    if g_score == "el" and not n:
        raise UserError("--score el needs --n above 0")
    io.check_new(out, overwrite)
    loaded, forget, unseen = load_inputs(model, forget_path, unseen_path, tokenizer, device, max_tokens, text_field, id_field, n)
    index = None
    if index_dir is not None:
        index = CorpusIndex.open(index_dir)
        index.check_tokenizer(LoadedTokenizer(loaded.name, loaded.tokenizer.backend_tokenizer).identity())
    options = MemorizationOptions(n=n, k=k, batch_size=batch_size, corpus_k=corpus_k)
    tables = {name: memorization_table(loaded, *data, options, index, progress_bars) for name, data in (("forget", forget), ("unseen", unseen))}
    g_name = g_column(g_score, n)
    interval = fit_interval(tables["unseen"].column(g_name).to_numpy(), tuple(fixed) if fixed else None)
    quality = forgetting_quality(tables["forget"].column(g_name).to_numpy(), interval)
    new_output_dir(out, overwrite)
    for name, table in tables.items():
        io.write_parquet(table, out / f"{name}.parquet")
    summary = {"model": model, "g": g_name, "interval": interval.to_dict(), "forget": quality.to_dict()}
    io.write_text(json.dumps(summary, indent=2), out / "summary.json")
    click.echo(
        f"g = {g_name}; interval [{interval.lo:.4f}, {interval.hi:.4f}] ({interval.source}), mu_u {interval.mu_u:.4f}\n"
        f"c(D_f) = {quality.outside} of {quality.n} outside: {quality.above} above (still memorized), {quality.below} below (over-unlearned)\n"
        f"mean g(D_f) {quality.mean:.4f} ± {quality.std:.4f}; average-based success (mean < mu_u): {quality.average_success}\n"
        f"wrote {out}/forget.parquet, unseen.parquet, summary.json"
    )


@click.command()
@model_inputs
@output_option("Folder to create for the attack's scores, metrics and ROC plot.")
@click.option("--neighbours", type=click.IntRange(min=0), default=4, show_default=True, help="Perturbed neighbours per sequence for calibrated MIAU (0 skips it).")
@click.option("--reference-share", type=click.FloatRange(0.1, 0.9), default=0.5, show_default=True, help="Share of the unseen set the attacker holds as known non-members.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--batch-size", type=click.IntRange(min=1), default=8, show_default=True)
@click.option("--overwrite", is_flag=True)
def attack(model, forget_path, unseen_path, tokenizer, device, max_tokens, text_field, id_field, out, neighbours, reference_share, seed, batch_size, overwrite):
    """MIAU against MODEL: which of forget + unseen were unlearned? ROC AUC, TPR at low FPR, ROC plot."""
    from memscan.attack import AttackOptions, plot_roc, run_attack

    io.check_new(out, overwrite)
    loaded, forget, unseen = load_inputs(model, forget_path, unseen_path, tokenizer, device, max_tokens, text_field, id_field, 0)
    options = AttackOptions(reference_share=reference_share, neighbours=neighbours, seed=seed, batch_size=batch_size)
    result = run_attack(loaded, forget, unseen, options, progress_bars)
    new_output_dir(out, overwrite)
    io.write_parquet(result.scores, out / "scores.parquet")
    io.write_text(result.metrics.to_pandas().to_csv(index=False), out / "metrics.csv")
    summary = {"model": model, "metrics": result.metrics.to_pylist(), "outlier_rule": result.outlier_rule, "reference_interval": result.interval.to_dict()}
    io.write_text(json.dumps(summary, indent=2), out / "summary.json")
    plot_roc(result, out / "roc.png", f"MIAU against {model}")
    click.echo(result.metrics.to_pandas().to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    rule = result.outlier_rule
    click.echo(f"outlier rule (g outside the reference interval): {rule['flagged']} flagged, precision {rule['precision']}, recall {rule['recall']}")
    click.echo(f"wrote {out}/scores.parquet, metrics.csv, summary.json, roc.png")


@click.command()
@model_inputs
@output_option("Folder to create (or to resume an unfinished run in).")
@click.option("--method", type=click.Choice(["ga", "sga", "ta", "tau"]), required=True)
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), default=5e-5, show_default=True, help="Adam learning rate.")
@click.option("--betas", type=float, nargs=2, default=(0.9, 0.98), show_default=True)
@click.option("--max-epochs", type=click.IntRange(min=0), default=20, show_default=True)
@click.option("--gamma", default="0.7", show_default=True, help="SGA ascends on g >= gamma; 'hi' uses the interval's upper end.")
@click.option("--lambda", "lam", type=float, default=3.0, show_default=True, help="TA: theta_0 - lambda (theta_ft - theta_0).")
@click.option("--tau-switch", type=float, default=0.5, show_default=True, help="TAU: SGA until mean g falls below this, then TA.")
@click.option("--tau-lambda", type=float, default=1.0, show_default=True)
@click.option("--score", "g_score", type=click.Choice(["ma", "el", "extraction_strength"]), default="ma", show_default=True, help="Which score is g.")
@click.option("--n", type=click.IntRange(min=1), default=10, show_default=True, help="EL_n's n when EL is g or tracked.")
@click.option("--track-el", is_flag=True, help="GA also waits for mean EL_n below its unseen mean.")
@click.option("--interval", "fixed", type=float, nargs=2, default=None, help=INTERVAL_HELP)
@click.option("--micro-batch", type=click.IntRange(min=1), default=8, show_default=True, help="Sequences per forward pass (gradients add up to one update).")
@click.option("--max-ce", type=float, default=100.0, show_default=True, help="Stop when the mean token CE exceeds this (exploding).")
@click.option("--seed", type=int, default=0, show_default=True)
def unlearn(model, forget_path, unseen_path, tokenizer, device, max_tokens, text_field, id_field, out, method, lr, betas, max_epochs, gamma, lam, tau_switch, tau_lambda, g_score, n, track_el, fixed, micro_batch, max_ce, seed):
    """Unlearn the forget set from MODEL with GA, SGA, TA or TAU; writes OUT/model, epochs.parquet, run.json."""
    from memscan import unlearn as unlearning

    try:
        gamma_value = None if gamma == "hi" else float(gamma)
    except ValueError:
        raise UserError(f"--gamma must be a number or 'hi', not {gamma!r}") from None
    config = unlearning.UnlearnConfig(
        method, lr=lr, betas=tuple(betas), max_epochs=max_epochs, gamma=gamma_value, lam=lam, tau_switch=tau_switch,
        tau_lam=tau_lambda, score=g_score, n=n, track_el=track_el, micro_batch=micro_batch, max_ce=max_ce, seed=seed,
    )
    loaded, forget, unseen = load_inputs(model, forget_path, unseen_path, tokenizer, device, max_tokens, text_field, id_field, n if config.uses_el else 0)
    identity = {"model": str(model), "tokenizer": tokenizer, "max_tokens": max_tokens}
    run = unlearning.unlearn(loaded, forget, unseen[1], config, out, tuple(fixed) if fixed else None, identity, log=lambda m: click.echo(m, err=True))
    final = run["final"]
    click.echo(
        f"{method}: {run['reason']} after {run['updates']} updates\n"
        f"c(D_f) = {final['outside']} of {final['n']} outside: {final['above']} above, {final['below']} below; "
        f"mean g {final['mean']:.4f} ± {final['std']:.4f} (mu_u {run['interval']['mu_u']:.4f})\n"
        f"wrote {out}/model, epochs.parquet, run.json"
    )


@click.command()
@click.option("-o", "--output", "out", type=click.Path(path_type=Path), default=Path("memscan-demo"), show_default=True)
@click.option("--max-epochs", type=click.IntRange(min=1), default=10, show_default=True)
@click.option("--overwrite", is_flag=True, help="Replace an existing output folder.")
def demo(out, max_epochs, overwrite):
    """The main job on the built-in model: implant KJV passages, measure, unlearn with GA/SGA/TA/TAU, report."""
    from memscan.demo import DemoSettings, run_demo

    run_demo(out, DemoSettings(max_epochs=max_epochs), overwrite)
