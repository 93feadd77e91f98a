"""`memscan audit`, step by step, into one output folder that a rerun resumes.

Steps and what each leaves (`audit.json` records the finished ones and the settings
they ran with; a rerun with the same settings skips them):
1. find: `find/part-*.parquet`, then `find.parquet` (one row per generation);
2. regions: `regions.parquet` (ranked, with evidence), `forget.jsonl` (the forget set as
   token ids), `unseen.jsonl` (the interval's unseen set);
3. before: `scores_before.parquet` (MA of the forget and unseen sequences), the interval,
   `utility_before.csv`, `neighbourhood.parquet` (MIAU's neighbours, made by this model)
   and `attack_before.csv`;
4. forget: `forget/` (an `memscan unlearn` run folder: model/, epochs.parquet, run.json);
5. verify: `verify-same/`, `verify-fresh/` (the find on the unlearned model, with the
   same prompts and fresh ones), `scores_after.parquet`, `utility_after.csv`,
   `attack_after.csv`, `regions_after.parquet` (per region, before and after);
6. report: `report.md` and its plots.
`find_only` stops after step 2 (and writes the report of what was found).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from memscan import io
from memscan.attack.metrics import attack_metrics
from memscan.attack.miau import MiauOptions, Neighbourhood
from memscan.errors import UserError
from memscan.eval.evaluate import evaluate_tasks, resolve_tasks
from memscan.eval.scorers import EvalOptions
from memscan.eval.tasks import Task
from memscan.experiment.audit.find import FindOptions, find_in_chunks, generations_wanted, timings
from memscan.experiment.audit.prompts import Windows, sample_windows
from memscan.experiment.audit.regions import Place, Regions, build_regions, unseen_windows
from memscan.experiment.audit.report import write_report
from memscan.experiment.audit.verify import generations_per_region, matched_spans, same_prompt_scores
from memscan.model.interval import MIN_UNSEEN, Interval, fit_interval
from memscan.model.loading import LoadedModel, load_model
from memscan.model.memorization import MemorizationOptions, memorization_table
from memscan.model.sequences import check_disjoint, encode_set
from memscan.scan.index import CorpusIndex
from memscan.scan.readers import Record
from memscan.unlearn.config import UnlearnConfig
from memscan.unlearn.run import run_unlearning

STATE_FILE = "audit.json"
DEFAULT_TASKS = ("arc_easy", "lambada", "novels")


@dataclass(frozen=True)
class AuditOptions:
    find: FindOptions = field(default_factory=FindOptions)
    prompts: int = 1000  # corpus windows to prompt with
    fresh_prompts: int = 1000  # further windows the verify step prompts the unlearned model with
    max_region_tokens: int = 256  # longer memorized regions are cut into pieces of this many tokens
    unseen_count: int = 100  # windows of never-memorized prompts taken as the unseen set
    miau_neighbours: int = 10  # MIAU: neighbours per candidate (0: skip the attack)
    tasks: tuple[str, ...] = DEFAULT_TASKS  # utility before and after
    task_limit: int | None = 100  # items per task
    find_only: bool = False


@dataclass(frozen=True)
class AuditInputs:
    model: str
    index: CorpusIndex
    device: str | None = None
    unseen: list[Record] | None = None  # the user's unseen set, read (tokenized by the model's tokenizer)
    max_tokens: int | None = None  # cut the user's unseen sequences to this many tokens


@dataclass(frozen=True)
class AuditPlan:
    """Everything checked and drawn before any model loads: bad input costs no model time."""

    windows: Windows
    fresh_windows: Windows | None  # None: no fresh prompts
    tasks: list[Task]
    harness: list[str]


def plan_audit(inputs: AuditInputs, options: AuditOptions) -> AuditPlan:
    length = options.find.k + options.find.m
    windows = sample_windows(inputs.index, options.prompts, length, options.find.seed)
    fresh = None
    if options.fresh_prompts:
        fresh = sample_windows(inputs.index, options.fresh_prompts, length, options.find.seed + 1, "--fresh-prompts")
    tasks, harness = resolve_tasks(list(options.tasks)) if options.tasks else ([], [])
    return AuditPlan(windows, fresh, tasks, harness)


class AuditFolder:
    """The output folder and `audit.json`: which steps are done, with which settings."""

    def __init__(self, path: Path, identity: dict):
        self.path = path
        self.state_file = path / STATE_FILE
        if self.state_file.exists():
            state = json.loads(self.state_file.read_text())
            if state.get("identity") != identity:
                raise UserError(
                    f"{path} holds an audit with other settings; rerun with those, or pass --overwrite to start again"
                )
            self.state = state
        else:
            self.state = {"identity": identity, "steps": {}}
            path.mkdir(parents=True, exist_ok=True)
            self._save()

    def done(self, step: str) -> bool:
        return step in self.state["steps"]

    def info(self, step: str) -> dict:
        return self.state["steps"][step]

    def finish(self, step: str, info: dict | None = None) -> None:
        self.state["steps"][step] = info or {}
        self._save()

    def _save(self) -> None:
        io.write_text(json.dumps(self.state, indent=2), self.state_file)


def is_resumable(path: Path) -> bool:
    """Whether `path` holds an audit a rerun can continue."""
    return (path / STATE_FILE).exists()


def run_audit(
    inputs: AuditInputs,
    plan: AuditPlan,
    options: AuditOptions,
    config: UnlearnConfig,
    out: Path,
    progress: Callable[[str, int], Callable[[int], object]],
    log: Callable[[str], object] = print,
) -> AuditFolder:
    """Every step not yet done, in order; returns the folder with its state."""
    identity = {
        "model": inputs.model,
        "index": str(inputs.index.path.resolve()),
        "index_checksum": inputs.index.header.get("files", {}),
        "options": asdict(options),
        "config": asdict(config),
        "unseen": None if inputs.unseen is None else [r.id for r in inputs.unseen],
        "max_tokens": inputs.max_tokens,
    }
    folder = AuditFolder(out, json.loads(json.dumps(identity)))
    index, find_options = inputs.index, options.find
    original = _Lazy(lambda: load_model(inputs.model, inputs.device))

    windows = plan.windows
    if not folder.done("find"):
        log(f"find: {options.prompts} prompts of {find_options.k} tokens, {find_options.m} generated")
        found = _find(original(), index, windows, find_options, out / "find", progress, "find")
        io.write_parquet(found, out / "find.parquet")
        folder.finish("find", timings(out / "find"))
    found = pq.read_table(out / "find.parquet")

    if not folder.done("regions"):
        decode = original().tokenizer.decode
        regions = build_regions(index, found, find_options, decode, options.max_region_tokens)
        if inputs.unseen is not None:
            unseen = encode_set(inputs.unseen, original(), inputs.max_tokens)
            check_disjoint((regions.ids, regions.sequences), unseen)
        else:
            unseen = unseen_windows(index, found, regions, find_options, options.unseen_count)
        _write_sets(out, regions, unseen, decode)
        folder.finish("regions", {"regions": len(regions.ids), "unseen": len(unseen[0])})
    regions = Regions(pq.read_table(out / "regions.parquet"), find_options.min_span)
    unseen = _read_unseen(out)

    if options.find_only or not regions.ids:
        if not regions.ids:
            log("no memorized region found: nothing to forget")
        write_report(out, folder.state, None)
        folder.finish("report")
        return folder
    if len(unseen[0]) < MIN_UNSEEN:
        raise UserError(
            f"only {len(unseen[0])} prompts were never memorized, but the interval needs {MIN_UNSEEN} unseen "
            "sequences: pass more --prompts, or an unseen set with --unseen"
        )
    forget = (regions.ids, regions.sequences)

    if not folder.done("before"):
        log("before: MA of the forget and unseen sequences, utility, MIAU's neighbours")
        loaded = original()
        scores = _scores(loaded, forget, unseen, progress)
        interval = fit_interval(scores.filter(pc.equal(scores.column("set"), "unseen")).column("ma").to_numpy())
        files = {
            out / "scores_before.parquet": io.parquet(scores),
            **_utility(loaded, plan, options.task_limit, out / "utility_before.csv"),
        }
        if options.miau_neighbours:
            miau = MiauOptions(neighbours=options.miau_neighbours, seed=find_options.seed)
            neighbourhood = Neighbourhood.build(loaded, forget, unseen, miau, progress)
            files[out / "neighbourhood.parquet"] = io.parquet(neighbourhood.to_table())
            files[out / "attack_before.csv"] = io.text(_miau(loaded, neighbourhood))
        io.commit(files)
        folder.finish("before", {"interval": interval.to_dict()})
    interval = Interval(**folder.info("before")["interval"])

    if not folder.done("forget"):
        log(f"forget: {config.method} on {len(forget[0])} regions")
        started = time.perf_counter()
        run = run_unlearning(original(), forget, unseen[1], config, out / "forget", None, {"model": inputs.model}, log)
        folder.finish(
            "forget", {"reason": run["reason"], "updates": run["updates"], "seconds": time.perf_counter() - started}
        )
    original.drop()

    if not folder.done("verify"):
        log("verify: the find again on the unlearned model, same prompts and fresh ones")
        after = load_model(str(out / "forget" / "model"), inputs.device)
        same = _find(after, index, windows, find_options, out / "verify-same", progress, "verify (same prompts)")
        fresh = None
        if plan.fresh_windows is not None:
            name = "verify (fresh prompts)"
            fresh = _find(after, index, plan.fresh_windows, find_options, out / "verify-fresh", progress, name)
        scores = _scores(after, forget, unseen, progress)
        fresh_counts, new_places = np.zeros(len(regions.ids), np.int64), list[Place]()
        if fresh is not None:
            fresh_counts, new_places = generations_per_region(index, fresh, regions, find_options)
        per_region = _regions_after(
            index, regions, same, fresh_counts, scores, out, find_options, after.tokenizer.decode
        )
        files = {
            out / "scores_after.parquet": io.parquet(scores),
            out / "regions_after.parquet": io.parquet(per_region),
            **_utility(after, plan, options.task_limit, out / "utility_after.csv"),
        }
        if options.miau_neighbours:
            neighbourhood = Neighbourhood.from_table(pq.read_table(out / "neighbourhood.parquet"))
            files[out / "attack_after.csv"] = io.text(_miau(after, neighbourhood))
        io.commit(files)
        folder.finish("verify", {"fresh_outside_regions": len(new_places)})
    write_report(out, folder.state, interval)
    folder.finish("report")
    return folder


class _Lazy:
    """The original model, loaded on first use (a resumed audit past the forget step never needs it)."""

    def __init__(self, load: Callable[[], LoadedModel]):
        self._load = load
        self._value: LoadedModel | None = None

    def __call__(self) -> LoadedModel:
        if self._value is None:
            self._value = self._load()
        return self._value

    def drop(self) -> None:
        self._value = None


def _find(loaded, index, windows, options: FindOptions, folder: Path, progress, name: str) -> pa.Table:
    update = progress(name, generations_wanted(len(windows), options))
    return find_in_chunks(loaded, index, windows, options, folder, update)


def _write_sets(out: Path, regions: Regions, unseen, decode) -> None:
    def rows(ids, sequences):
        return pa.table(
            {
                "id": pa.array(list(ids), pa.string()),
                "tokens": pa.array([s.tolist() for s in sequences], pa.list_(pa.int64())),
                "preview": pa.array([decode(s.tolist()) for s in sequences], pa.string()),
            }
        )

    io.commit(
        {
            out / "regions.parquet": io.parquet(regions.table),
            out / "forget.jsonl": io.jsonl(rows(regions.ids, regions.sequences)),
            out / "unseen.jsonl": io.jsonl(rows(*unseen)),
        }
    )


def _read_unseen(out: Path) -> tuple[list[str], list[np.ndarray]]:
    """The unseen set as written (read by hand, not `read_set`: it may be empty, which the step after reports)."""
    rows = [json.loads(line) for line in (out / "unseen.jsonl").read_text(encoding="utf-8").splitlines() if line]
    return [r["id"] for r in rows], [np.asarray(r["tokens"], np.uint32) for r in rows]


def _scores(loaded, forget, unseen, progress) -> pa.Table:
    """MA and loss of every forget and unseen sequence under `loaded`."""
    options = MemorizationOptions(n=0, k=0)
    tables = []
    for name, (ids, sequences) in (("forget", forget), ("unseen", unseen)):
        table = memorization_table(loaded, ids, sequences, options, progress=progress).select(["id", "ma", "loss"])
        tables.append(table.append_column("set", pa.array([name] * table.num_rows, pa.string())))
    return pa.concat_tables(tables)


def _utility(loaded, plan: AuditPlan, limit: int | None, path: Path) -> dict:
    if not plan.tasks and not plan.harness:
        return {}
    result = evaluate_tasks(loaded, plan.tasks, EvalOptions(limit=limit), plan.harness)
    return {path: io.text(result.metrics.to_pandas().to_csv(index=False))}


def _miau(loaded, neighbourhood: Neighbourhood) -> str:
    """The paper's MIAU against `loaded` (neighbours made by the original model), as CSV."""
    values = neighbourhood.scores(loaded)
    return attack_metrics(neighbourhood.member, {"miau": values}).to_pandas().to_csv(index=False)


def _regions_after(index, regions, same, fresh_counts, scores_after, out, options, decode) -> pa.Table:
    before_counts = regions.table.column("n_generations").to_numpy()
    same_counts, _ = generations_per_region(index, same, regions, options)
    before_scores = pq.read_table(out / "scores_before.parquet")
    ma_before = _ma_of(before_scores, regions.ids)
    ma_after = _ma_of(scores_after, regions.ids)
    return pa.table(
        {
            "region": pa.array(regions.ids, pa.string()),
            "doc_id": regions.table.column("doc_id"),
            "generations_before": pa.array(before_counts),
            "generations_after": pa.array(same_counts),
            "fresh_generations_after": pa.array(fresh_counts),
            "remains": pa.array((same_counts + fresh_counts) > 0),
            "longest_match_before": regions.table.column("longest_match"),
            "longest_match_after": pa.array(same_prompt_scores(same, regions, "longest_match")),
            "prefix_length_before": regions.table.column("prefix_length"),
            "prefix_length_after": pa.array(same_prompt_scores(same, regions, "prefix_length")),
            "ma_before": pa.array(ma_before),
            "ma_after": pa.array(ma_after),
            "matched_span_after": pa.array(matched_spans(same, regions, decode), pa.string()),
        }
    )


def _ma_of(scores: pa.Table, ids: list[str]) -> np.ndarray:
    forget = scores.filter(pc.equal(scores.column("set"), "forget"))
    by_id = dict(zip(forget.column("id").to_pylist(), forget.column("ma").to_pylist()))
    return np.array([by_id[i] for i in ids])
