"""`memscan demo`: the main job, end to end on the built-in model, offline.

1. Cut public-domain passages (the KJV) into sequences of `tokens` tokens; split them
   into a forget set, an unseen set and held-out text.
2. Implant the forget set into SmolLM2-135M by fine-tuning with repeat counts 1, 2, 4
   and 8, so memorization varies per sequence as it does for pretraining data.
3. Score every sequence; learn the interval from the unseen set.
4. Run GA, SGA, TA and TAU from the implanted model with DESIGN.md's defaults; after
   each, score the forget set, attack it with MIAU and measure held-out perplexity.
5. Write a comparison table (Parquet, CSV, Markdown), per-sequence PNG plots with the
   interval shaded, ROC curves, and a report of what happened.
"""

from __future__ import annotations

import copy
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import click
import numpy as np
import pyarrow as pa
import torch
from tqdm import tqdm

from memscan import io
from memscan.attack import AttackOptions, run_attack
from memscan.corpus import kjv_paragraphs
from memscan.errors import UserError
from memscan.forward import perplexity
from memscan.implant import implant, spread_repeats
from memscan.interval import fit_interval, forgetting_quality
from memscan.memorization import MemorizationOptions, memorization_table
from memscan.models import DEFAULT_MODEL, LoadedModel, load_model
from memscan.unlearn import METHODS, UnlearnConfig, Unlearning, epochs_table


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
    neighbours: int = 2  # MIAU calibration
    seed: int = 0


def kjv_sequences(loaded: LoadedModel, settings: DemoSettings) -> dict[str, tuple[list[str], list[np.ndarray]]]:
    """Disjoint forget / unseen / held-out sets: the first `tokens` tokens of KJV paragraphs, shuffled."""
    records = list(kjv_paragraphs())
    encoded = loaded.encode([r.text for r in records])
    pool = [(r.id, np.asarray(e[: settings.tokens], np.uint32)) for r, e in zip(records, encoded) if len(e) >= settings.tokens]
    order = np.random.default_rng(settings.seed).permutation(len(pool))
    sizes = {"forget": settings.forget_size, "unseen": settings.unseen_size, "heldout": settings.heldout_size}
    if sum(sizes.values()) > len(pool):
        raise UserError(
            f"{sum(sizes.values())} KJV passages of {settings.tokens} tokens wanted ({', '.join(f'{k} {v}' for k, v in sizes.items())}), "
            f"but only {len(pool)} paragraphs are that long"
        )
    sets, start = {}, 0
    for name, size in sizes.items():
        picked = [pool[i] for i in order[start : start + size]]
        sets[name] = ([p[0] for p in picked], [p[1] for p in picked])
        start += size
    return sets


def evaluate(loaded, sets, interval, settings: DemoSettings, name: str) -> tuple[dict, pa.Table, object]:
    """One row of the comparison table, the forget set's per-sequence scores, and the attack."""
    table = memorization_table(loaded, *sets["forget"], MemorizationOptions(n=0, k=settings.k))
    quality = forgetting_quality(table.column("ma").to_numpy(), interval)
    attack = run_attack(loaded, sets["forget"], sets["unseen"], AttackOptions(neighbours=settings.neighbours, seed=settings.seed))
    auc = {r["attack"]: r for r in attack.metrics.to_pylist()}
    row = {
        "method": name,
        "above": quality.above,
        "below": quality.below,
        "outside": quality.outside,
        "mean_g": quality.mean,
        "std_g": quality.std,
        "gap_to_mu_u": quality.gap_to_mu_u,
        "average_success": quality.average_success,
        f"extractable_{settings.k}": int(np.sum(table.column(f"extractable_{settings.k}").to_numpy(zero_copy_only=False))),
        "miau_auc": auc["miau"]["auc"],
        "miau_tpr_at_1pct_fpr": auc["miau"]["tpr_at_1pct_fpr"],
        "miau_tpr_at_10pct_fpr": auc["miau"]["tpr_at_10pct_fpr"],
        "miau_neighbour_auc": auc.get("miau_neighbour", {}).get("auc"),
        "loss_attack_auc": auc["loss"]["auc"],
        "min_k_pp_auc": auc["min_k_pp"]["auc"],
        "heldout_perplexity": perplexity(loaded, sets["heldout"][1]),
    }
    return row, table, attack


def run_demo(out: Path, settings: DemoSettings = DemoSettings(), overwrite: bool = False) -> None:
    io.check_new(out, overwrite)
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    say = lambda message: click.echo(f"[{time.perf_counter() - started:6.1f} s] {message}", err=True)  # noqa: E731

    say(f"loading {settings.model} (converted from its GGUF and cached on first use)…")
    loaded = load_model(settings.model, "cpu" if not torch.cuda.is_available() else None)
    sets = kjv_sequences(loaded, settings)
    say(f"{len(sets['forget'][1])} forget, {len(sets['unseen'][1])} unseen, {len(sets['heldout'][1])} held-out KJV passages of {settings.tokens} tokens")

    repeats = spread_repeats(settings.forget_size)
    base_ma = memorization_table(loaded, *sets["forget"], MemorizationOptions(n=0, k=0)).column("ma").to_pylist()
    with tqdm(total=max(repeats), desc="implanting", unit=" epoch", file=sys.stderr, leave=False) as bar:
        implant(loaded, sets["forget"][1], repeats, settings.implant_lr, progress=bar.update)
    unseen_ma = memorization_table(loaded, *sets["unseen"], MemorizationOptions(n=0, k=0)).column("ma").to_numpy()
    interval = fit_interval(unseen_ma)
    say(f"implanted; unseen MA mean {interval.mu_u:.3f}, interval [{interval.lo:.3f}, {interval.hi:.3f}]")

    rows, per_sequence, attacks, epochs = [], {}, {}, {}
    row, per_sequence["implanted"], attacks["implanted"] = evaluate(loaded, sets, interval, settings, "implanted (none)")
    rows.append({**row, "updates": 0, "unlearn_seconds": 0.0, "stopped": "-"})
    say(f"implanted model: {row['above']} above / {row['below']} below the interval, mean MA {row['mean_g']:.3f}, MIAU AUC {row['miau_auc']:.2f}")
    implanted_weights = copy.deepcopy(loaded.model.state_dict())

    for method in METHODS:
        loaded.model.load_state_dict(implanted_weights)
        config = UnlearnConfig(method, max_epochs=settings.max_epochs, seed=settings.seed)
        t0 = time.perf_counter()
        state = Unlearning(loaded, sets["forget"][1], interval, config, log=lambda m, method=method: say(f"{method}: {m}")).run()
        seconds = time.perf_counter() - t0
        row, per_sequence[method], attacks[method] = evaluate(loaded, sets, interval, settings, method)
        updates = sum(r.train_ce is not None for r in state.records)
        rows.append({**row, "updates": updates, "unlearn_seconds": seconds, "stopped": state.reason})
        epochs[method] = epochs_table(sets["forget"][0], state.records)
        say(f"{method}: {state.reason}; {row['above']} above / {row['below']} below, mean MA {row['mean_g']:.3f}, MIAU AUC {row['miau_auc']:.2f}")

    write_results(out, settings, sets, repeats, base_ma, interval, rows, per_sequence, attacks, epochs, time.perf_counter() - started)
    say(f"wrote {out}/report.md")


def write_results(out, settings, sets, repeats, base_ma, interval, rows, per_sequence, attacks, epochs, seconds) -> None:
    from memscan.plots import plot_epochs, plot_per_sequence, plot_rocs

    comparison = pa.Table.from_pylist(rows)
    io.write_parquet(comparison, out / "comparison.parquet")
    io.write_text(comparison.to_pandas().to_csv(index=False), out / "comparison.csv")
    forget_rows = []
    for name, table in per_sequence.items():
        for i, r in enumerate(table.to_pylist()):
            forget_rows.append({"model": name, "repeats": repeats[i], "pretrained_ma": base_ma[i], **r})
    io.write_parquet(pa.Table.from_pylist(forget_rows), out / "forget_scores.parquet")
    for method, table in epochs.items():
        io.write_parquet(table, out / f"epochs_{method}.parquet")
    plot_per_sequence({k: t.column("ma").to_numpy() for k, t in per_sequence.items()}, repeats, interval, out / "per_sequence.png")
    plot_epochs(epochs, interval, out / "epochs.png")
    plot_rocs(attacks, out / "miau_roc.png")
    io.write_text(json.dumps({"settings": settings.__dict__, "interval": interval.to_dict(), "seconds": seconds}, indent=2), out / "run.json")
    from memscan.demo_report import demo_report

    io.write_text(demo_report(settings, sets, repeats, base_ma, interval, rows, per_sequence, seconds), out / "report.md")
    click.echo(comparison.select(["method", "above", "below", "mean_g", "std_g", "miau_auc", "heldout_perplexity", "unlearn_seconds"]).to_pandas().to_string(index=False, float_format=lambda v: f"{v:.3f}"))
