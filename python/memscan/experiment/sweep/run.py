"""Running a sweep: every cell once, each written as soon as it is done, so a stopped
sweep resumes at the first missing cell.

A group (model, forget-set size, seed) builds its forget, unseen and held-out sets as
the default run does (KJV passages, seeded), implants the forget set into the
pretrained weights, learns the interval from the unseen set, and then evaluates the
implanted model (method "none") and each unlearning method started from it. A cell is
one (group, method): its forgetting quality, MIAU, utility and timings.
"""

from __future__ import annotations

import functools
import json
import math
import re
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import click
import numpy as np
import torch
from tqdm import tqdm

from memscan import io, memory
from memscan.attack import Neighbourhood
from memscan.errors import UserError
from memscan.eval import EvalOptions, Task, UtilityResult, evaluate_tasks, resolve_tasks
from memscan.eval.scorers import decodes
from memscan.experiment.evaluate import (
    EvaluationSettings,
    ModelEvaluation,
    evaluate_model,
    neighbourhood_of,
    unseen_interval,
)
from memscan.experiment.implant import ImplantedPassages, implant_passages, pretrained_passages
from memscan.experiment.sets import PassageSizes, check_passages, file_passages, retain_passages
from memscan.experiment.sweep.config import DPD, NONE, SweepConfig
from memscan.model.interval import Interval
from memscan.model.loading import LoadedModel, check_model_spec, load_model, load_tokenizer
from memscan.model.weights import cpu_copy, load_weights, weights_digest
from memscan.unlearn import Targets, UnlearnConfig, Unlearning, UnlearnState
from memscan.unlearn.config import RETAIN_METHODS

SETTINGS_FILE = "sweep.json"


def cell_path(out: Path, model: str, size: int, seed: int, method: str) -> Path:
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", model).strip("_")
    return out / "cells" / slug / f"forget{size}" / f"seed{seed}" / f"{method}.json"


def checkpoint_path(out: Path, model: str, size: int, seed: int, method: str) -> Path:
    """Where a cell's unlearning keeps its training state until the cell is written."""
    cell = cell_path(out, model, size, seed, method)
    return out / "checkpoints" / cell.relative_to(out / "cells").with_suffix(".pt")


def _remove_checkpoint(out: Path, path: Path) -> None:
    """A written cell's checkpoint, and the folders under `out` it leaves empty."""
    path.unlink(missing_ok=True)
    for folder in path.parents:
        if folder == out or not folder.is_dir() or any(folder.iterdir()):
            return
        folder.rmdir()


def check_models(config: SweepConfig) -> None:
    """Every model loadable and its tokenizer able to fill the largest forget set, before
    any model is loaded or the sweep folder made (loads the tokenizers alone)."""
    for model in config.models:
        check_model_spec(model)
    for model in config.models:
        if config.implant:  # files are counted when their group starts (they need the model's tokenizer too)
            check_passages(functools.partial(_encode, load_tokenizer(model)), _sizes(config, max(config.forget_sizes)))


def _encode(tokenizer, texts: list[str]) -> list[list[int]]:
    return tokenizer(texts, add_special_tokens=False).input_ids


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
            raise UserError(
                f"{out} holds a sweep with other settings ({changed[0]}: {before.get(changed[0])} here, {config.shared()[changed[0]]} now); name a new folder"
            )
        if not changed:
            return  # resume
        # no cell finished under the old settings: nothing is lost by taking the new ones,
        # and no checkpoint of theirs may be resumed under these
        shutil.rmtree(out / "checkpoints", ignore_errors=True)
    if not out.parent.exists():
        raise UserError(f"{out.parent}: no such directory")
    out.mkdir(exist_ok=True)
    io.write_text(json.dumps(config.shared(), indent=2), settings_path)


@dataclass(frozen=True)
class Group:
    """The cells that share one implanted model: (model, forget-set size, seed)."""

    model: str
    forget_size: int
    seed: int


@dataclass
class CellResult:
    """One (group, method) cell: what was measured, ready to be written as its JSON record."""

    group: Group
    method: str
    parameters: int
    evaluation: ModelEvaluation
    utility: UtilityResult
    state: UnlearnState | None  # None for the implanted model itself
    unlearn_seconds: float
    cell_seconds: float
    peak_mib: tuple[float, float | None]  # resident and CUDA memory at the cell's peak
    interval: Interval  # of g, from the unseen set
    g: str = "ma"  # the memorization-table column c(D_f) counts: ma_dpd for DPD
    utility_reused: bool = False  # every task's results came from an earlier cell with the same weights
    resumed: bool = False  # its unlearning went on from a checkpoint: seconds and peaks are this process's

    def cell(self) -> dict:
        """The cell's row of results.parquet."""
        row, state, primary = self.evaluation.row, self.state, self.utility.primary()
        return {
            "model": self.group.model,
            "parameters": self.parameters,
            "forget_size": self.group.forget_size,
            "seed": self.group.seed,
            **row,
            "outside_share": row["outside"] / self.group.forget_size,
            **primary,
            "utility_mean": float(
                np.mean([v for k, v in primary.items() if not k.endswith("_perplexity")] or [np.nan])
            ),
            "updates": 0 if state is None else state.updates,
            "stopped": "-" if state is None else state.reason,
            "unlearn_seconds": self.unlearn_seconds,
            "cell_seconds": self.cell_seconds,
            "peak_rss_mib": self.peak_mib[0],
            "peak_cuda_mib": self.peak_mib[1],
        }

    def record(self, implanted: ImplantedPassages, commit: str, retain: dict | None = None) -> dict:
        return {
            "cell": self.cell(),
            **({"retain": retain} if retain else {}),
            "code_commit": commit,
            **({"utility_reused": True} if self.utility_reused else {}),
            **({"resumed_from_checkpoint": True} if self.resumed else {}),
            "g": self.g,
            "interval": self.interval.to_dict(),
            "repeats": implanted.repeats,
            "forget_g": self.evaluation.forget_scores.column(self.g).to_pylist(),
            "utility": self.utility.metrics.to_pylist(),
        }


def run_sweep(
    config: SweepConfig, out: Path, shard: tuple[int, int] = (0, 1), checkpoint_seconds: float = math.inf
) -> None:
    """Run the cells not yet in `out`. shard = (i, n): only the groups (model, forget size,
    seed) whose place in the grid is i modulo n, so that n processes (one per GPU) can
    share one sweep folder; each writes the report of every cell finished so far. Each
    cell resets the process's peak-memory counters to record its own peak.
    `checkpoint_seconds`: at least this long between the checkpoints of a cell's
    unlearning (under out/checkpoints, removed once the cell is written; inf: none), so
    an interrupted cell goes on from its last one; one left by an earlier run is resumed
    whatever this is."""
    from memscan.experiment.sweep.report import commit_of_code, write_report

    tasks, harness = resolve_tasks(list(config.tasks))
    check_models(config)
    commit = commit_of_code()  # before the sweep writes into a folder that may lie in the checkout
    open_sweep(config, out)
    grid_groups = list(dict.fromkeys(c[:3] for c in config.cells()))
    mine = set(grid_groups[shard[0] :: shard[1]])
    cells = [c for c in config.cells() if c[:3] in mine]
    todo = [c for c in cells if not cell_path(out, *c).exists()]
    started = time.perf_counter()

    def say(message: str) -> None:
        click.echo(f"[{time.perf_counter() - started:7.1f} s] {message}", err=True)

    part = f" (shard {shard[0]} of {shard[1]}: {len(mine)} of {len(grid_groups)} groups)" if shard[1] > 1 else ""
    say(f"{len(cells)} cells{part}, {len(cells) - len(todo)} already done")
    with tqdm(total=len(cells), initial=len(cells) - len(todo), desc="sweep", unit=" cell", file=sys.stderr) as bar:
        for model in config.models:
            groups = sorted({(f, s) for m, f, s, _ in todo if m == model})
            if not groups:
                continue
            loaded = load_model(model, config.device or ("cpu" if not torch.cuda.is_available() else None))
            pretrained = cpu_copy(loaded.model)
            suites: dict[tuple, UtilityResult] = {}  # a task's results per (weights digest, seed, task, decoding)
            for size, seed in groups:
                load_weights(loaded.model, pretrained)
                group = Group(model, size, seed)
                methods = [method for m, f, s, method in todo if (m, f, s) == (model, size, seed)]
                implanted = _group_sets(loaded, config, model, size, seed)
                interval = implanted.interval
                done = "implanted" if config.implant else "read from files"
                say(f"{model}, forget {size}, seed {seed}: {done}; interval [{interval.lo:.3f}, {interval.hi:.3f}]")
                neighbourhood = neighbourhood_of(loaded, implanted.sets, _evaluation(config, seed))
                retain = _retain_set(loaded, config, seed, implanted) if set(methods) & set(RETAIN_METHODS) else None
                implanted_weights = cpu_copy(loaded.model)
                for method in methods:
                    load_weights(loaded.model, implanted_weights)
                    experiment = (implanted, neighbourhood, retain)
                    checkpoint = (checkpoint_path(out, model, size, seed, method), checkpoint_seconds)
                    result = _run_cell(loaded, group, method, experiment, config, (tasks, harness), suites, checkpoint)
                    path = cell_path(out, model, size, seed, method)
                    path.parent.mkdir(parents=True, exist_ok=True)
                    used = (
                        {"file": config.retain_file, "size": config.retain_size} if method in RETAIN_METHODS else None
                    )
                    io.write_text(json.dumps(result.record(implanted, commit, used), indent=1), path)
                    _remove_checkpoint(out, checkpoint[0])
                    row, cell = result.evaluation.row, result.cell()
                    say(
                        f"  {method}: {row['above']} above / {row['below']} below, MIAU AUC {row['miau_auc']:.2f}, utility {cell['utility_mean']:.3f}, {cell['cell_seconds']:.0f} s"
                    )
                    bar.update(1)
    write_report(config, out, commit)
    say(f"wrote {out}/results.parquet, results.csv, report.md and plots")


def _group_sets(loaded: LoadedModel, config: SweepConfig, model: str, size: int, seed: int) -> ImplantedPassages:
    """A group's sets and interval: KJV passages implanted into the model, or (implant =
    false) the forget file of this size and seed and draws from the unseen file, as they are."""
    if config.implant:
        rate = config.implant_lr_for(model)
        return implant_passages(loaded, _sizes(config, size), seed, rate, fixed_interval=config.fixed_interval)
    forget_path, unseen_path = config.forget_file(size, seed), Path(config.unseen_file)
    sizes = _sizes(config, size)
    sets = file_passages(
        loaded, forget_path, unseen_path, sizes, seed, config.text_field, config.id_field, config.k + 1
    )
    return pretrained_passages(loaded, sets, config.fixed_interval)


def _retain_set(loaded: LoadedModel, config: SweepConfig, seed: int, implanted: ImplantedPassages):
    path = Path(config.retain_file)
    return retain_passages(
        loaded,
        path,
        implanted.sets,
        config.retain_size,
        config.tokens,
        seed,
        config.text_field,
        config.id_field,
        config.k + 1,
    )


def _sizes(config: SweepConfig, forget_size: int) -> PassageSizes:
    return PassageSizes(config.tokens, forget_size, config.unseen_size, config.heldout_size)


def _evaluation(config: SweepConfig, seed: int) -> EvaluationSettings:
    return EvaluationSettings(config.k, config.neighbours, seed, config.miau_neighbours)


def _run_cell(
    loaded: LoadedModel,
    group: Group,
    method: str,
    experiment: tuple[ImplantedPassages, Neighbourhood, list[np.ndarray] | None],
    config: SweepConfig,
    tasks: tuple[list[Task], list[str]],
    suites: dict[tuple, UtilityResult],
    checkpoint: tuple[Path, float],
) -> CellResult:
    """Unlearn with `method` from the implanted weights (none, dpd: keep them), then evaluate.
    `checkpoint`: (path, seconds at least between writes) of the unlearning's checkpoints.

    A cell whose weights equal an earlier cell's (DPD and none always, a method that
    stepped as another did) takes the tasks' results from `suites` (see `_suite`); DPD
    reruns only the tasks that decode, sampling their answers under private decoding."""
    implanted, neighbourhood, retain = experiment
    memory.reset_peaks()
    t0 = time.perf_counter()
    state, resumed = None, False
    g, interval = "ma", implanted.interval
    if method == DPD:  # no update: the same weights, scored as if they decoded privately
        g, interval = "ma_dpd", unseen_interval(loaded, implanted.sets, config.fixed_interval, "ma_dpd")
    elif method != NONE:
        unlearn_config = UnlearnConfig(
            method,
            max_epochs=config.max_epochs,
            seed=group.seed,
            max_ppl_ratio=config.max_ppl_ratio,
            stop_inside=config.stop_inside,
        )
        targets = Targets(implanted.interval)
        uses = retain if unlearn_config.uses_retain else None
        guard = implanted.sets.heldout[1] if config.max_ppl_ratio is not None else None
        forget = implanted.sets.forget[1]
        path, every = checkpoint
        resumed = path.exists()
        state = Unlearning(
            loaded, forget, targets, unlearn_config, path, retain=uses, guard=guard, checkpoint_seconds=every
        ).run()
    unlearn_seconds = time.perf_counter() - t0
    settings = _evaluation(config, group.seed)
    evaluation = evaluate_model(loaded, implanted.sets, interval, settings, method, neighbourhood, g)
    decoding = "dpd" if method == DPD else "greedy"
    options = EvalOptions(limit=config.task_limit, seed=group.seed, progress=False, decoding=decoding)
    utility, reused = _suite(loaded, tasks, options, suites)
    parameters = sum(p.numel() for p in loaded.model.parameters())
    seconds = time.perf_counter() - t0
    peaks = (memory.peak_rss_mib(), memory.peak_cuda_mib(loaded.device))
    return CellResult(
        group,
        method,
        parameters,
        evaluation,
        utility,
        state,
        unlearn_seconds,
        seconds,
        peaks,
        interval,
        g,
        reused,
        resumed,
    )


def _suite(
    loaded: LoadedModel, tasks: tuple[list[Task], list[str]], options: EvalOptions, suites: dict[tuple, UtilityResult]
) -> tuple[UtilityResult, bool]:
    """The task suite, and whether every task's results came from `suites`: a task's results
    depend only on the weights, the seed that draws its items and, for a task that decodes,
    the decoding; each is computed once per such key."""
    digest = weights_digest(loaded.model)
    named, harness = tasks
    jobs: list[tuple[tuple, list[Task], list[str]]] = [
        ((digest, options.seed, task.name, options.decoding if decodes(task.items) else ""), [task], [])
        for task in named
    ]
    if harness:
        jobs.append(((digest, options.seed, "lm-eval", ",".join(harness)), [], harness))
    reused = True
    for key, some, harness_part in jobs:
        if key not in suites:
            suites[key] = evaluate_tasks(loaded, some, options, harness_part)
            reused = False
    return UtilityResult.joined([suites[key] for key, _, _ in jobs]), reused
