"""`memscan demo`: the main job, end to end on the built-in model, offline.

1. Cut public-domain passages (the KJV) into sequences of `tokens` tokens; split them
   into a forget set, an unseen set and held-out text.
2. Implant the forget set into SmolLM2-135M by fine-tuning with repeat counts 1, 2, 4
   and 8, so memorization varies per sequence as it does for pretraining data.
3. Score every sequence; learn the interval from the unseen set.
4. Run GA, SGA, TA and TAU from the implanted model with the authors' defaults; after
   each, score the forget set, attack it with MIAU and measure held-out perplexity.
5. Write a comparison table (Parquet, CSV, Markdown), per-sequence PNG plots with the
   interval shaded, ROC curves, and a report of what happened.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import click
import pyarrow as pa
import torch
from tqdm import tqdm

from memscan import io
from memscan.attack import AttackResult
from memscan.experiment.evaluate import EvaluationSettings, evaluate_model, neighbourhood_of
from memscan.experiment.implant import DEFAULT_REPEATS, ImplantedPassages, implant_passages
from memscan.experiment.sets import PassageSizes
from memscan.model.choices import DEFAULT_MODEL
from memscan.model.loading import load_model
from memscan.model.weights import cpu_copy, load_weights
from memscan.progress import progress_bars
from memscan.unlearn import Targets, UnlearnConfig, Unlearning, epochs_table
from memscan.unlearn.config import PAPER_METHODS


@dataclass(frozen=True)
class DemoSettings:
    model: str = DEFAULT_MODEL
    tokens: int = 64  # per sequence
    forget_size: int = 16
    unseen_size: int = 32
    heldout_size: int = 16
    implant_lr: float = 1e-4
    max_epochs: int = 10
    k: int = 32  # prompt length of the extraction test
    neighbours: int = 2  # the z-score test's swapped copies
    miau_neighbours: int = 10  # the paper's MIAU (25 per candidate there): fewer, to fit 15 min on 2 CPU cores
    seed: int = 0

    @property
    def sizes(self) -> PassageSizes:
        return PassageSizes(self.tokens, self.forget_size, self.unseen_size, self.heldout_size)

    @property
    def evaluation(self) -> EvaluationSettings:
        return EvaluationSettings(self.k, self.neighbours, self.seed, self.miau_neighbours)


@dataclass
class DemoResult:
    settings: DemoSettings
    implanted: ImplantedPassages
    rows: list[dict] = field(default_factory=list)  # the comparison table: implanted model, then each method
    forget_scores: dict[str, pa.Table] = field(default_factory=dict)  # per model: the forget set's scores
    attacks: dict[str, AttackResult] = field(default_factory=dict)
    epochs: dict[str, pa.Table] = field(default_factory=dict)  # per method: per sequence and epoch
    seconds: float = 0.0
    miau_generator: str = ""  # what made MIAU's neighbours


def run_demo(out: Path, settings: DemoSettings = DemoSettings(), overwrite: bool = False) -> DemoResult:
    io.check_new(out, overwrite)
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()

    def say(message: str) -> None:
        click.echo(f"[{time.perf_counter() - started:6.1f} s] {message}", err=True)

    say(f"loading {settings.model} (converted from its GGUF and cached on first use)…")
    loaded = load_model(settings.model, "cpu" if not torch.cuda.is_available() else None)
    with tqdm(total=max(DEFAULT_REPEATS), desc="implanting", unit=" epoch", file=sys.stderr, leave=False) as bar:
        implanted = implant_passages(loaded, settings.sizes, settings.seed, settings.implant_lr, progress=bar.update)
    sets, interval = implanted.sets, implanted.interval
    say(
        f"{len(sets.forget[1])} forget, {len(sets.unseen[1])} unseen, {len(sets.heldout[1])} held-out KJV passages of {settings.tokens} tokens"
    )
    say(f"implanted; unseen MA mean {interval.mu_u:.3f}, interval [{interval.lo:.3f}, {interval.hi:.3f}]")

    with progress_bars() as progress:
        neighbourhood = neighbourhood_of(loaded, sets, settings.evaluation, progress)
    say(f"MIAU: {neighbourhood.generator}")
    result = DemoResult(settings, implanted, miau_generator=neighbourhood.generator)
    _add(
        result,
        "implanted",
        evaluate_model(loaded, sets, interval, settings.evaluation, "implanted (none)", neighbourhood),
        updates=0,
        seconds=0.0,
        stopped="-",
    )
    row = result.rows[-1]
    say(
        f"implanted model: {row['above']} above / {row['below']} below the interval, mean MA {row['mean_g']:.3f}, MIAU AUC {row['miau_auc']:.2f}"
    )
    implanted_weights = cpu_copy(loaded.model)

    for method in PAPER_METHODS:
        load_weights(loaded.model, implanted_weights)
        config = UnlearnConfig(method, max_epochs=settings.max_epochs, seed=settings.seed)
        t0 = time.perf_counter()
        state = Unlearning(
            loaded, sets.forget[1], Targets(interval), config, log=lambda m, method=method: say(f"{method}: {m}")
        ).run()
        seconds = time.perf_counter() - t0
        updates = state.updates
        _add(
            result,
            method,
            evaluate_model(loaded, sets, interval, settings.evaluation, method, neighbourhood),
            updates,
            seconds,
            state.reason,
        )
        result.epochs[method] = epochs_table(sets.forget[0], state.records)
        row = result.rows[-1]
        say(
            f"{method}: {state.reason}; {row['above']} above / {row['below']} below, mean MA {row['mean_g']:.3f}, MIAU AUC {row['miau_auc']:.2f}"
        )

    result.seconds = time.perf_counter() - started
    write_results(out, result)
    say(f"wrote {out}/report.md")
    return result


def _add(result: DemoResult, name: str, evaluation, updates: int, seconds: float, stopped: str | None) -> None:
    result.rows.append({**evaluation.row, "updates": updates, "unlearn_seconds": seconds, "stopped": stopped})
    result.forget_scores[name] = evaluation.forget_scores
    result.attacks[name] = evaluation.attack


def write_results(out: Path, result: DemoResult) -> None:
    from memscan.experiment.demo_report import demo_report
    from memscan.experiment.plots import plot_epochs, plot_per_sequence, plot_rocs

    implanted = result.implanted
    comparison = pa.Table.from_pylist(result.rows)
    io.write_parquet(comparison, out / "comparison.parquet")
    io.write_text(comparison.to_pandas().to_csv(index=False), out / "comparison.csv")
    forget_rows = []
    for name, table in result.forget_scores.items():
        for i, r in enumerate(table.to_pylist()):
            forget_rows.append(
                {"model": name, "repeats": implanted.repeats[i], "pretrained_ma": implanted.pretrained_ma[i], **r}
            )
    io.write_parquet(pa.Table.from_pylist(forget_rows), out / "forget_scores.parquet")
    for method, table in result.epochs.items():
        io.write_parquet(table, out / f"epochs_{method}.parquet")
    g_by_model = {k: t.column("ma").to_numpy() for k, t in result.forget_scores.items()}
    plot_per_sequence(g_by_model, implanted.repeats, implanted.interval, out / "per_sequence.png")
    plot_epochs(result.epochs, implanted.interval, out / "epochs.png")
    plot_rocs(result.attacks, out / "miau_roc.png")
    run = {"settings": asdict(result.settings), "interval": implanted.interval.to_dict(), "seconds": result.seconds}
    io.write_text(json.dumps(run, indent=2), out / "run.json")
    io.write_text(demo_report(result), out / "report.md")
    shown = ["method", "above", "below", "mean_g", "std_g", "miau_auc", "heldout_perplexity", "unlearn_seconds"]
    click.echo(comparison.select(shown).to_pandas().to_string(index=False, float_format=lambda v: f"{v:.3f}"))
