"""Utility evaluation: what unlearning must not break.

- `tasks`: task items in four shapes, the built-in offline tasks, user JSONL files.
- `scorers`: scoring a model on each shape (choices by NLL, greedy completion, F1, perplexity).
- `statistics`: Wilson and bootstrap intervals, seeded subsamples.
- `evaluate`: `evaluate_tasks` over a list of tasks; `writing`: its files.
- `lm_eval_adapter`: lm-evaluation-harness tasks, when installed.
"""

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
