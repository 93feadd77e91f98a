"""The model-side commands: `memorization`, `attack` and `unlearn`."""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path

import click

from memscan import io
from memscan.cli import options
from memscan.errors import UserError
from memscan.model.choices import DEFAULT_MODEL, G_SCORES, MEASURED_SCORES
from memscan.model.interval import check_unseen_count, fit_interval, forgetting_quality
from memscan.model.ranks import ONE, Ranks, current, pick
from memscan.progress import progress_bars
from memscan.scan.readers import Record
from memscan.unlearn.config import METHODS


@dataclass(frozen=True)
class ModelInputs:
    """MODEL, the forget and unseen sets, and how to load and cut them."""

    model: str
    forget_path: Path
    unseen_path: Path
    tokenizer: str | None
    device: str | None
    max_tokens: int | None
    min_tokens: int | None
    text_field: str
    id_field: str

    @property
    def paths(self) -> list[str | Path | None]:
        """Everything this command reads from disk, which no output may touch."""
        return [self.forget_path, self.unseen_path, self.model, self.tokenizer]

    def read(self) -> SetRecords:
        """Both sets read and checked, and the model checked loadable, before any model is loaded."""
        from memscan.model.loading import check_model_spec
        from memscan.model.sequences import check_disjoint_records, read_set

        forget = read_set(self.forget_path, self.text_field, self.id_field)
        unseen = read_set(self.unseen_path, self.text_field, self.id_field)
        check_unseen_count(len(unseen))
        check_disjoint_records(forget, unseen)
        check_model_spec(self.model)
        if self.tokenizer is not None:
            check_model_spec(self.tokenizer, "tokenizer")
        return SetRecords(forget, unseen)

    def check_index(self, index) -> None:
        """Refuse an index built with another tokenizer than the model's (loads the tokenizer alone)."""
        from memscan.model.loading import load_tokenizer
        from memscan.scan.tokenizer import LoadedTokenizer

        tokenizer = load_tokenizer(self.tokenizer or self.model)
        index.check_tokenizer(LoadedTokenizer(self.model, tokenizer.backend_tokenizer).identity())

    def load(self, sets: SetRecords, n: int, ranks: Ranks = ONE):
        """The model (on this rank's device) and both sets tokenized, with every check
        that needs no scoring (n: EL_n's n, 0 without EL)."""
        from memscan.model.loading import load_model
        from memscan.model.memorization import check_sequences
        from memscan.model.sequences import check_disjoint, encode_set, long_enough

        if ranks.is_main:
            click.echo(f"loading {self.model}…" + (f" ({ranks.size} processes)" if ranks.size > 1 else ""), err=True)
        loaded = load_model(self.model, ranks.device or self.device, self.tokenizer)
        forget = encode_set(sets.forget, loaded, self.max_tokens)
        unseen = encode_set(sets.unseen, loaded, self.max_tokens)
        if self.min_tokens:
            kept = long_enough(unseen, self.min_tokens)
            if ranks.is_main and len(kept[1]) < len(unseen[1]):
                left_out = len(unseen[1]) - len(kept[1])
                click.echo(f"left out {left_out} unseen sequences under {self.min_tokens} tokens", err=True)
            unseen = kept
            check_unseen_count(len(unseen[1]))
        check_sequences(*forget, n, "forget")
        check_sequences(*unseen, n, "unseen")
        check_disjoint(forget, unseen)
        if ranks.is_main:
            click.echo(
                f"{loaded.name} on {loaded.device}: {len(forget[1])} forget and {len(unseen[1])} unseen sequences",
                err=True,
            )
        return loaded, forget, unseen


@dataclass(frozen=True)
class SetRecords:
    """The forget and unseen sets as read, not yet tokenized."""

    forget: list[Record]
    unseen: list[Record]


def model_inputs(command):
    """The options every model command takes, handed to it as one `inputs: ModelInputs`."""
    decorators = [
        click.argument("model", default=DEFAULT_MODEL),
        click.option(
            "--forget",
            "forget_path",
            required=True,
            type=click.Path(path_type=Path),
            help="Forget set (JSONL/CSV/txt/Parquet; text or token ids).",
        ),
        click.option(
            "--unseen",
            "unseen_path",
            required=True,
            type=click.Path(path_type=Path),
            help="Unseen sequences of the same source (>= 20).",
        ),
        options.tokenizer(None, "Tokenizer folder or hub id [default: the model's]."),
        options.device,
        options.max_tokens,
        options.min_tokens,
        options.text_field,
        options.id_field,
    ]

    @functools.wraps(command)
    def with_inputs(**kwargs):
        inputs = ModelInputs(**{name: kwargs.pop(name) for name in ModelInputs.__dataclass_fields__})
        return command(inputs=inputs, **kwargs)

    for decorator in reversed(decorators):
        with_inputs = decorator(with_inputs)
    return with_inputs


g_score = click.option(
    "--score", "score", type=click.Choice(G_SCORES), default="ma", show_default=True, help="Which score is g."
)
measured_score = click.option(
    "--score",
    "score",
    type=click.Choice(MEASURED_SCORES),
    default="ma",
    show_default=True,
    help="Which score is g. ma_dpd and el_dpd (EL_n of one draw per prefix) score the papers' DPD, whose "
    "sampled k-prompt continuation gets the _dpd extraction columns too; draws seeded by --seed.",
)


@click.command()
@model_inputs
@options.output("Folder to create for the per-sequence tables and the report.")
@click.option("--n", type=options.count(0), default=10, show_default=True, help="EL_n's n (0 skips EL).")
@click.option(
    "--k",
    type=options.count(0),
    default=32,
    show_default=True,
    help="Prompt length of k-extractability (0 skips it).",
)
@measured_score
@options.seed
@options.fixed_interval
@click.option(
    "--index",
    "index_dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Match the k-prompt generations against this corpus index.",
)
@click.option(
    "--corpus-k",
    type=options.count(1),
    default=32,
    show_default=True,
    help="Span length that counts as a corpus match.",
)
@options.batch_size
@options.preset
@options.overwrite
@click.pass_context
def memorization(
    ctx, inputs: ModelInputs, out, n, k, score, seed, index_dir, corpus_k, batch_size, overwrite, **settings
):
    """Per-sequence memorization of the forget and unseen sets, the interval, and c(D_f)."""
    from memscan.model.memorization import MemorizationOptions, g_column, memorization_table
    from memscan.scan.index import CorpusIndex

    fixed = options.apply_preset(ctx, settings)["fixed_interval"]

    if score in ("el", "el_dpd") and not n:
        raise UserError(f"--score {score} needs --n above 0")
    io.check_new(out, overwrite, [*inputs.paths, index_dir])
    sets = inputs.read()
    index = None
    if index_dir is not None:
        index = CorpusIndex.open(index_dir)
        inputs.check_index(index)
    ranks = current(inputs.device)
    loaded, forget, unseen = inputs.load(sets, n, ranks)
    dpd = score.endswith("_dpd")
    memorization_options = MemorizationOptions(
        n=n,
        k=k,
        batch_size=batch_size,
        corpus_k=corpus_k,
        dpd_seed=seed if dpd else None,
        dpd_el=score == "el_dpd",
    )
    dpd_seed = seed if memorization_options.samples_dpd else None
    with progress_bars() as progress:
        shown = progress if ranks.is_main else None

        def scored(ids, sequences):
            """The set's table, each rank scoring its block of the sequences."""
            return ranks.split_table(
                len(ids),
                lambda rows: memorization_table(
                    loaded, pick(ids, rows), pick(sequences, rows), memorization_options, index, shown
                ),
            )

        tables = {"forget": scored(*forget), "unseen": scored(*unseen)}
    if not ranks.is_main:
        return
    g_name = g_column(score, n)
    interval = fit_interval(tables["unseen"].column(g_name).to_numpy(), tuple(fixed) if fixed else None)
    quality = forgetting_quality(tables["forget"].column(g_name).to_numpy(), interval)
    io.make_output_dir(out, overwrite, [*inputs.paths, index_dir])
    for name, table in tables.items():
        io.write_parquet(table, out / f"{name}.parquet")
    summary = {
        "model": inputs.model,
        "g": g_name,
        **({"dpd_seed": dpd_seed} if dpd_seed is not None else {}),
        "interval": interval.to_dict(),
        "forget": quality.to_dict(),
    }
    io.write_text(json.dumps(summary, indent=2), out / "summary.json")
    click.echo(
        f"g = {g_name}; interval [{interval.lo:.4f}, {interval.hi:.4f}] ({interval.source}), mu_u {interval.mu_u:.4f}\n"
        f"c(D_f) = {quality.outside} of {quality.n} outside: {quality.above} above (still memorized), {quality.below} below (over-unlearned)\n"
        f"mean g(D_f) {quality.mean:.4f} ± {quality.std:.4f}; average-based success (mean < mu_u): {quality.average_success}\n"
        f"wrote {out}/forget.parquet, unseen.parquet, summary.json"
    )


@click.command()
@model_inputs
@options.output("Folder to create for the attack's scores, metrics and ROC plot.")
@click.option(
    "--neighbours",
    type=options.count(0),
    default=25,
    show_default=True,
    help="MIAU (the paper's): neighbours per candidate (0 skips it).",
)
@click.option(
    "--mask-pct",
    type=options.Finite(0.0, 1.0, min_open=True),
    default=0.3,
    show_default=True,
    help="MIAU: the authors' masking percentage.",
)
@click.option(
    "--mask-model",
    default=None,
    help="MIAU: a causal LM (built-in name, folder or hub id) resampling the masked spans [default: MODEL itself].",
)
@click.option(
    "--swap-neighbours",
    type=options.count(0),
    default=4,
    show_default=True,
    help="z-score test: swapped copies per sequence for zscore_swap (0 skips it).",
)
@click.option(
    "--reference-share",
    type=options.Finite(0.1, 0.9),
    default=0.5,
    show_default=True,
    help="Share of the unseen set the attacker holds as known non-members.",
)
@options.seed
@options.batch_size
@options.overwrite
def attack(inputs: ModelInputs, out, mask_model, overwrite, **settings):
    """Which of forget + unseen were unlearned? The paper's MIAU, memscan's z-score test and the
    one-sided attacks against MODEL: ROC and PR AUC, TPR at low FPR, ROC plot."""
    from memscan.attack import AttackOptions, MiauOptions, Neighbourhood, plot_roc, run_attack
    from memscan.model.loading import check_model_spec, load_model

    io.check_new(out, overwrite, [*inputs.paths, mask_model])
    sets = inputs.read()
    if mask_model is not None:
        check_model_spec(mask_model)
    attack_options = AttackOptions(**settings)
    ranks = current(inputs.device)
    loaded, forget, unseen = inputs.load(sets, 0, ranks)
    neighbourhood = None
    if mask_model is not None and attack_options.neighbours:
        sampler = load_model(mask_model, ranks.device or inputs.device)
        miau = MiauOptions(attack_options.neighbours, attack_options.mask_pct, attack_options.seed)
        neighbourhood = Neighbourhood.build(sampler, forget, unseen, miau, ranks=ranks)
    with progress_bars() as progress:
        result = run_attack(
            loaded, forget, unseen, attack_options, progress if ranks.is_main else None, neighbourhood, ranks
        )
    if not ranks.is_main:
        return
    io.make_output_dir(out, overwrite, [*inputs.paths, mask_model])
    io.write_parquet(result.scores, out / "scores.parquet")
    if result.miau_scores is not None:
        io.write_parquet(result.miau_scores, out / "miau_scores.parquet")
    io.write_text(result.metrics.to_pandas().to_csv(index=False), out / "metrics.csv")
    summary = {
        "model": inputs.model,
        "metrics": result.metrics.to_pylist(),
        "outlier_rule": result.outlier_rule,
        "reference_interval": result.interval.to_dict(),
    }
    io.write_text(json.dumps(summary, indent=2), out / "summary.json")
    plot_roc(result, out / "roc.png", f"Attacks against {inputs.model}")
    click.echo(result.metrics.to_pandas().to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    rule = result.outlier_rule
    click.echo(
        f"outlier rule (g outside the reference interval): {rule['flagged']} flagged, precision {rule['precision']}, recall {rule['recall']}"
    )
    click.echo(f"wrote {out}/scores.parquet, metrics.csv, summary.json, roc.png")


def _gamma(_ctx, _param, value: str) -> float | None:
    try:
        return None if value == "hi" else float(value)
    except ValueError:
        raise UserError(f"--gamma must be a number or 'hi', not {value!r}") from None


@click.command()
@model_inputs
@options.output("Folder to create (or to resume an unfinished run in).")
@click.option(
    "--method",
    type=click.Choice(METHODS),
    required=True,
    help="The unlearning method (docs/definitions.md); gd and ga_mismatch need --retain.",
)
@click.option(
    "--lr", type=options.Finite(min=0, min_open=True), default=5e-5, show_default=True, help="Adam learning rate."
)
@click.option(
    "--betas", type=options.Finite(), nargs=2, default=(0.9, 0.98), show_default=True, help="Adam's beta1 and beta2."
)
@click.option("--max-epochs", type=options.count(0), default=20, show_default=True, help="At most this many epochs.")
@click.option(
    "--gamma",
    default="0.7",
    show_default=True,
    callback=_gamma,
    help="SGA ascends on g >= gamma; 'hi' uses the interval's upper end.",
)
@click.option(
    "--skip-below-lo", is_flag=True, help="SGA variant: never ascend on a sequence already below the interval."
)
@click.option("--strict-stop", is_flag=True, help="SGA variant: also wait until no sequence is above the interval.")
@click.option(
    "--stop-inside",
    is_flag=True,
    help="Every method: stop as soon as every forget sequence is inside the interval (c(D_f) = 0), before its own "
    "rule. Not in the papers (docs/results/operating-point.md).",
)
@click.option(
    "--first-threshold",
    type=options.Finite(),
    default=0.9,
    show_default=True,
    help="TA: gradient ascent until mean g falls below this, then descent and the edit.",
)
@click.option(
    "--lambda",
    "lam",
    type=options.Finite(),
    default=3.0,
    show_default=True,
    help="TA: theta_s - lambda (theta - theta_s).",
)
@click.option(
    "--tau-switch",
    type=options.Finite(),
    default=0.5,
    show_default=True,
    help="TAU: SGA until mean g falls below this, then TA.",
)
@click.option(
    "--tau-lambda",
    "tau_lam",
    type=options.Finite(),
    default=1.0,
    show_default=True,
    help="TAU: TA's lambda after the switch, relative to the weights there.",
)
@click.option(
    "--npo-beta", type=options.Finite(min=0, min_open=True), default=0.1, show_default=True, help="NPO's beta."
)
@click.option(
    "--retain",
    "retain_path",
    type=click.Path(path_type=Path),
    default=None,
    help="gd, ga_mismatch: text the model must keep (gd descends on it; ga_mismatch keeps its KL to the input "
    "model and draws mismatched completions from it).",
)
@click.option(
    "--retain-weight",
    type=options.Finite(min=0),
    default=1.0,
    show_default=True,
    help="gd: weight of the retain set's CE.",
)
@g_score
@click.option("--n", type=options.count(1), default=10, show_default=True, help="EL_n's n when EL is g or tracked.")
@click.option("--track-el", is_flag=True, help="GA also waits for mean EL_n below its unseen mean.")
@options.fixed_interval
@click.option(
    "--micro-batch",
    type=options.count(1),
    default=8,
    show_default=True,
    help="Sequences per micro-batch: the loss averages their mean CEs; SGA selects within each.",
)
@click.option(
    "--max-ce",
    type=options.Finite(),
    default=100.0,
    show_default=True,
    help="Stop when the mean token CE exceeds this (exploding).",
)
@click.option(
    "--miau-neighbours",
    type=options.count(0),
    default=0,
    show_default=True,
    help="Record the paper's MIAU every epoch with this many neighbours per candidate (0: not tracked).",
)
@click.option(
    "--max-ppl-ratio",
    type=options.Finite(min=1, min_open=True),
    default=None,
    help="Utility guard: stop before an update that raises the guard text's perplexity above this multiple of the "
    "input model's (e.g. 1.2), keeping the epoch before. Not in the papers (docs/definitions.md).",
)
@click.option(
    "--guard-text",
    "guard_path",
    type=click.Path(path_type=Path),
    default=None,
    help="Text whose perplexity is recorded every epoch (epochs.parquet: guard_ppl) and held by --max-ppl-ratio; "
    "default with a limit: the unseen set. Best: held-out text of the domain the model must keep.",
)
@click.option(
    "--fsdp",
    is_flag=True,
    help="Launched as several processes: shard the weights, gradients and optimizer state across them (FSDP), "
    "for a model whose training state does not fit one device.",
)
@click.option(
    "--checkpoint-every",
    "checkpoint_seconds",
    type=options.Finite(min=0),
    default=0.0,
    help="Seconds at least between checkpoints [default: 0, after every update]. A checkpoint is the whole "
    "training state (12 bytes a parameter, 16 for TA and TAU), which for a large model on a GPU takes longer to "
    "write than an epoch: pass e.g. 600 to lose at most that much work to a kill.",
)
@options.seed
@options.preset
@click.pass_context
def unlearn(ctx, inputs: ModelInputs, out, retain_path, guard_path, fsdp, checkpoint_seconds, **settings):
    """Unlearn the forget set from MODEL with GA, SGA, TA, TAU, NPO, or with --retain gradient difference
    (gd) or GA+Mismatch; writes OUT/model, epochs.parquet, run.json."""
    from memscan.model.sequences import check_disjoint, encode_set, read_set
    from memscan.unlearn import UnlearnConfig, run_unlearning
    from memscan.unlearn.run import check_resumable, check_retain, check_sharding

    def read_other(path: Path | None):
        return read_set(path, inputs.text_field, inputs.id_field) if path is not None else None

    def encode_other(records, what: str):
        """A set besides forget and unseen, tokenized and cut as they are, apart from the forget set."""
        if records is None:
            return None
        ids, sequences = encode_set(records, loaded, inputs.max_tokens)
        check_disjoint(forget, (ids, sequences), what)
        return sequences

    settings = options.apply_preset(ctx, settings)
    fixed = settings.pop("fixed_interval")
    config = UnlearnConfig(**{**settings, "betas": tuple(settings["betas"])})
    io.check_apart(out, [*inputs.paths, retain_path, guard_path])
    check_resumable(out)
    retain_records, guard_records = read_other(retain_path), read_other(guard_path)
    check_retain(config, retain_records)
    ranks = current(inputs.device)
    check_sharding(config, ranks, fsdp)
    loaded, forget, unseen = inputs.load(inputs.read(), config.n if config.uses_el else 0, ranks)
    retain, guard = encode_other(retain_records, "retain"), encode_other(guard_records, "guard")
    identity = {"model": str(inputs.model), "tokenizer": inputs.tokenizer, "max_tokens": inputs.max_tokens}
    run = run_unlearning(
        loaded,
        forget,
        unseen[1],
        config,
        out,
        tuple(fixed) if fixed else None,
        identity,
        log=(lambda m: click.echo(m, err=True)) if ranks.is_main else (lambda m: None),
        retain=retain,
        ranks=ranks,
        shard=fsdp,
        guard=guard,
        checkpoint_seconds=checkpoint_seconds,
    )
    if not ranks.is_main:
        return
    final = run["final"]
    click.echo(
        f"{config.method}: {run['reason']} after {run['updates']} updates\n"
        f"c(D_f) = {final['outside']} of {final['n']} outside: {final['above']} above, {final['below']} below; "
        f"mean g {final['mean']:.4f} ± {final['std']:.4f} (mu_u {run['interval']['mu_u']:.4f})\n"
        + (
            f"guard text perplexity {run['guard_ppl']['input']:.2f} -> {run['guard_ppl']['output']:.2f}\n"
            if run["guard_ppl"]
            else ""
        )
        + f"wrote {out}/model, epochs.parquet, run.json"
    )
