"""Tasks of EleutherAI's lm-evaluation-harness, `lm-eval:<task>`, when it is installed
(`pip install lm-eval`) and the machine can download the task's data. The harness runs
on the already-loaded model; its metrics come back in memscan's table, with a normal
95% interval from the harness's standard errors."""

from __future__ import annotations

import importlib.util

from memscan.errors import UserError
from memscan.eval.statistics import Z95
from memscan.model.loading import LoadedModel

PREFIX = "lm-eval:"


def is_lm_eval_task(name: str) -> bool:
    return name.startswith(PREFIX)


def check_available(names: list[str]) -> None:
    """Fail before any model time is spent when a harness task is asked for without the harness."""
    wanted = [n for n in names if is_lm_eval_task(n)]
    if wanted and importlib.util.find_spec("lm_eval") is None:
        raise UserError(f"{wanted[0]} needs lm-evaluation-harness: pip install lm-eval (and a connection for its data)")
    for name in wanted:
        if not name[len(PREFIX) :]:
            raise UserError(f"{name!r}: name the harness task after 'lm-eval:'")


def run_lm_eval(loaded: LoadedModel, names: list[str], limit: int | None, batch_size: int) -> list[dict]:
    """Metric rows (task, metric, value, ci_low, ci_high, items, items_total, primary)."""
    import lm_eval
    from lm_eval.models.huggingface import HFLM

    tasks = [n[len(PREFIX) :] for n in names]
    harness_model = HFLM(pretrained=loaded.model, tokenizer=loaded.tokenizer, batch_size=batch_size)
    try:
        output = lm_eval.simple_evaluate(model=harness_model, tasks=tasks, limit=limit)
    except Exception as e:  # the harness raises many kinds: unknown task, no network, ...
        raise UserError(
            f"lm-evaluation-harness failed on {', '.join(tasks)}: {str(e).splitlines()[0] if str(e) else type(e).__name__}"
        ) from None
    rows = []
    for task in tasks:
        results = output["results"].get(task, {})
        items = output.get("n-samples", {}).get(task, {}).get("effective")
        for key, value in results.items():
            metric, _, _filter = key.partition(",")
            if metric.endswith("_stderr") or not isinstance(value, (int, float)):
                continue
            stderr = results.get(f"{metric}_stderr,{_filter}")
            half = Z95 * stderr if isinstance(stderr, (int, float)) else float("nan")
            rows.append(
                {
                    "task": PREFIX + task,
                    "metric": metric,
                    "value": float(value),
                    "ci_low": value - half,
                    "ci_high": value + half,
                    "items": items,
                    "items_total": output.get("n-samples", {}).get(task, {}).get("original"),
                    "primary": metric == "acc",
                }
            )
    return rows
