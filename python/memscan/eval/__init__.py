"""Utility evaluation: what unlearning must not break.

- `tasks`: task items in four shapes, the built-in offline tasks, user JSONL files.
- `scorers`: scoring a model on each shape (choices by NLL, greedy completion, F1, perplexity).
- `statistics`: Wilson and bootstrap intervals, seeded subsamples.
- `evaluate`: `evaluate_tasks` over a list of tasks; `writing`: its files.
- `lm_eval_adapter`: lm-evaluation-harness tasks, when installed.
"""

from typing import TYPE_CHECKING

from memscan.lazy import exports

if TYPE_CHECKING:
    from memscan.eval.evaluate import UtilityResult, evaluate_tasks, resolve_tasks
    from memscan.eval.scorers import EvalOptions
    from memscan.eval.tasks import PAPER_SUITE, Task, load_task
    from memscan.eval.writing import utility_table, write_utility

__all__ = [
    "PAPER_SUITE",
    "EvalOptions",
    "Task",
    "UtilityResult",
    "evaluate_tasks",
    "load_task",
    "resolve_tasks",
    "utility_table",
    "write_utility",
]

__getattr__ = exports(
    __name__,
    {
        "EvalOptions": "memscan.eval.scorers",
        "PAPER_SUITE": "memscan.eval.tasks",
        "Task": "memscan.eval.tasks",
        "UtilityResult": "memscan.eval.evaluate",
        "evaluate_tasks": "memscan.eval.evaluate",
        "load_task": "memscan.eval.tasks",
        "resolve_tasks": "memscan.eval.evaluate",
        "utility_table": "memscan.eval.writing",
        "write_utility": "memscan.eval.writing",
    },
)
