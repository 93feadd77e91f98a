"""Running a sweep: every cell once, each written as soon as it is done, so a stopped
sweep resumes at the first missing cell.

A group (model, forget-set size, seed) builds its forget, unseen and held-out sets as
the default run does (KJV passages, seeded), implants the forget set into the
pretrained weights, learns the interval from the unseen set, and then evaluates the
implanted model (method "none") and each unlearning method started from it. A cell is
one (group, method): its forgetting quality, MIAU, utility and timings.
"""

from __future__ import annotations

import json
import re
import sys
import time
from pathlib import Path

import click
import numpy as np
import torch
from tqdm import tqdm

from memscan import io
from memscan.demo import DemoSettings, evaluate, kjv_sequences
from memscan.errors import UserError
from memscan.implant import implant, spread_repeats
from memscan.interval import fit_interval
from memscan.memorization import MemorizationOptions, memorization_table
from memscan.sweep.config import NONE, SweepConfig
from memscan.unlearn import UnlearnConfig, Unlearning
from memscan.unlearn.task_arithmetic import cpu_copy, load_weights
from memscan.utility import EvalOptions, evaluate_tasks, resolve_tasks

SETTINGS_FILE = "sweep.json"


def cell_path(out: Path, model: str, size: int, seed: int, method: str) -> Path:
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", model).strip("_")
    return out / "cells" / slug / f"forget{size}" / f"seed{seed}" / f"{method}.json"


def open_sweep(config: SweepConfig, out: Path) -> None:
    """Create the sweep folder, or accept it for resuming when its shared settings match
    (or when no cell has finished yet, e.g. after a config that could not run)."""
    settings_path = out / SETTINGS_FILE
    if out.exists() and not settings_path.exists() and any(out.iterdir()):
        raise UserError(f"{out} exists and holds no sweep; name a new folder")
    if settings_path.exists():
        before = json.loads(settings_path.read_text())
        changed = [k for k in config.shared() if json.dumps(before.get(k)) != json.dumps(config.shared()[k])]
        finished = any((out / "cells").rglob("*.json"))
        if changed and finished:
            raise UserError(f"{out} holds a sweep with other settings ({changed[0]}: {before.get(changed[0])} here, {config.shared()[changed[0]]} now); name a new folder")
        if not changed:
            return  # resume
        # no cell finished under the old settings: nothing is lost by taking the new ones
    if not out.parent.exists():
        raise UserError(f"{out.parent}: no such directory")
    out.mkdir(exist_ok=True)
    io.write_text(json.dumps(config.shared(), indent=2), settings_path)


def run_sweep(config: SweepConfig, out: Path) -> None:
    from memscan.sweep.report import commit_of_code, write_report

    tasks, harness = resolve_tasks(list(config.tasks))
    commit = commit_of_code()  # before the sweep writes into a folder that may lie in the checkout
    open_sweep(config, out)
    cells = config.cells()
    todo = [c for c in cells if not cell_path(out, *c).exists()]
    started = time.perf_counter()
    say = lambda m: click.echo(f"[{time.perf_counter() - started:7.1f} s] {m}", err=True)  # noqa: E731
    say(f"{len(cells)} cells, {len(cells) - len(todo)} already done")
    with tqdm(total=len(cells), initial=len(cells) - len(todo), desc="sweep", unit=" cell", file=sys.stderr) as bar:
        for model in config.models:
            groups = sorted({(f, s) for m, f, s, _ in todo if m == model})
            if not groups:
                continue
            loaded = _load(model, config)
            pretrained = cpu_copy(loaded.model)
            for size, seed in groups:
                load_weights(loaded.model, pretrained)
                methods = [method for m, f, s, method in todo if (m, f, s) == (model, size, seed)]
                _run_group(loaded, model, config, size, seed, methods, tasks, harness, out, say, bar, commit)
    write_report(config, out, commit)
    say(f"wrote {out}/results.parquet, results.csv, report.md and plots")


def _load(model: str, config: SweepConfig):
    from memscan.models import load_model

    device = config.device or ("cpu" if not torch.cuda.is_available() else None)
    return load_model(model, device)


def _run_group(loaded, model: str, config: SweepConfig, size: int, seed: int, methods, tasks, harness, out: Path, say, bar, commit: str) -> None:
    settings = DemoSettings(
        model=model, tokens=config.tokens, forget_size=size, unseen_size=config.unseen_size, heldout_size=config.heldout_size,
        implant_lr=config.implant_lr_for(model), max_epochs=config.max_epochs, k=config.k, neighbours=config.neighbours, seed=seed,
    )
    sets = kjv_sequences(loaded, settings)
    repeats = spread_repeats(size)
    torch.manual_seed(seed)
    implant(loaded, sets["forget"][1], repeats, settings.implant_lr)
    unseen_ma = memorization_table(loaded, *sets["unseen"], MemorizationOptions(n=0, k=0)).column("ma").to_numpy()
    interval = fit_interval(unseen_ma)
    implanted = cpu_copy(loaded.model)
    say(f"{model}, forget {size}, seed {seed}: implanted; interval [{interval.lo:.3f}, {interval.hi:.3f}]")
    for method in methods:
        t0 = time.perf_counter()
        state = None
        load_weights(loaded.model, implanted)
        if method != NONE:
            config_u = UnlearnConfig(method, max_epochs=config.max_epochs, seed=seed)
            state = Unlearning(loaded, sets["forget"][1], interval, config_u).run()
        unlearn_seconds = time.perf_counter() - t0
        row, table, _ = evaluate(loaded, sets, interval, settings, method)
        utility = evaluate_tasks(loaded, tasks, EvalOptions(limit=config.task_limit, seed=seed, progress=False), harness)
        cell = {
            "model": model, "parameters": sum(p.numel() for p in loaded.model.parameters()),
            "forget_size": size, "seed": seed, **row, "outside_share": row["outside"] / size,
            **utility.primary(),
            "utility_mean": float(np.mean([v for k, v in utility.primary().items() if not k.endswith("_perplexity")] or [np.nan])),
            "updates": 0 if state is None else sum(r.train_ce is not None for r in state.records),
            "stopped": "-" if state is None else state.reason,
            "unlearn_seconds": unlearn_seconds, "cell_seconds": time.perf_counter() - t0,
        }
        record = {
            "cell": cell, "code_commit": commit, "interval": interval.to_dict(), "repeats": repeats,
            "forget_g": table.column("ma").to_pylist(), "utility": utility.metrics.to_pylist(),
        }
        path = cell_path(out, model, size, seed, method)
        path.parent.mkdir(parents=True, exist_ok=True)
        io.write_text(json.dumps(record, indent=1), path)
        say(f"  {method}: {row['above']} above / {row['below']} below, MIAU AUC {row['miau_auc']:.2f}, utility {cell['utility_mean']:.3f}, {cell['cell_seconds']:.0f} s")
        bar.update(1)
