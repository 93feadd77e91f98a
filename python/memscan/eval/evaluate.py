"""Utility of a model on tasks: what unlearning must not break.

Every figure comes with a 95% interval: Wilson's for accuracies, a seeded percentile
bootstrap over items for F1 and perplexity. Subsamples are drawn with a fixed seed.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass

import pyarrow as pa
from tqdm import tqdm

from memscan.errors import UserError
from memscan.eval.lm_eval_adapter import check_available, is_lm_eval_task, run_lm_eval
from memscan.eval.paper_tasks import load_paper_task
from memscan.eval.scorers import PRIMARY_METRIC, SCORERS, EvalOptions, work
from memscan.eval.statistics import subsample
from memscan.eval.tasks import Task, load_task
from memscan.model.loading import LoadedModel


@dataclass
class UtilityResult:
    metrics: pa.Table  # task, metric, value, ci_low, ci_high, items, items_total, primary
    items: dict[str, pa.Table]  # per task: one row per evaluated item

    @staticmethod
    def joined(parts: Sequence[UtilityResult]) -> UtilityResult:
        """One result of several tasks' results, in order."""
        metrics = [row for part in parts for row in part.metrics.to_pylist()]
        return UtilityResult(pa.Table.from_pylist(metrics), {k: v for part in parts for k, v in part.items.items()})

    def primary(self) -> dict[str, float]:
        """{task_metric: value} of each task's headline metric."""
        return {f"{r['task']}_{r['metric']}": r["value"] for r in self.metrics.to_pylist() if r["primary"]}


def evaluate_tasks(
    loaded: LoadedModel, tasks: Sequence[Task], options: EvalOptions | None = None, harness: Sequence[str] = ()
) -> UtilityResult:
    """Every task's metrics; `harness` names lm-evaluation-harness tasks (lm-eval:<task>)."""
    options = options or EvalOptions()
    metrics, per_item = [], {}
    for task in tasks:
        items = subsample(task.items, options.limit, options.seed)
        kind = type(items[0])
        with tqdm(
            total=work(items), desc=task.name, unit=" row", file=sys.stderr, leave=False, disable=not options.progress
        ) as bar:
            rows, task_metrics = SCORERS[kind](loaded, items, options, bar)
        per_item[task.name] = pa.Table.from_pylist(rows)
        for m in task_metrics:
            metrics.append(
                {"task": task.name, **m, "items_total": len(task.items), "primary": m["metric"] == PRIMARY_METRIC[kind]}
            )
    if harness:
        metrics += run_lm_eval(loaded, list(harness), options.limit, options.batch_size)
    return UtilityResult(pa.Table.from_pylist(metrics), per_item)


def resolve_tasks(names: Sequence[str]) -> tuple[list[Task], list[str]]:
    """Built-in tasks and task files, loaded; harness task names, checked. All before any model time."""
    if not names:
        raise UserError("no tasks given")
    if len(set(names)) != len(names):
        raise UserError(f"a task is named twice in {', '.join(names)}")
    check_available(list(names))
    tasks = [load_paper_task(n) if "=" in n else load_task(n) for n in names if not is_lm_eval_task(n)]
    return tasks, [n for n in names if is_lm_eval_task(n)]
