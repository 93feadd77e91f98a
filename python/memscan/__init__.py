"""memscan: per-sequence measurement and unlearning of verbatim memorization.

Python API:
- Scanner: `CorpusIndex` (build / open a suffix-array index; count, locate, matching
  statistics, coverage, attribution), `memscan.scores` (pair scores and EL_n),
  `scan_against_index`, `scan_pairs`.
- Model side (imported on first use, so the scanner never loads torch):
  `load_model`, `memorization_table`, `fit_interval`, `forgetting_quality`,
  `run_attack`, `unlearn`, `UnlearnConfig`.
- Utility and the sweep (imported on first use too): `load_task`, `evaluate_tasks`,
  `EvalOptions`, `read_config`, `run_sweep`.
"""

from importlib import import_module

from memscan.errors import IndexCorruptError, UserError
from memscan.index import CorpusIndex, Document
from memscan.scan import scan_against_index, scan_pairs
from memscan.tokenizer import load_tokenizer

_MODEL_SIDE = {
    "load_model": "memscan.models",
    "memorization_table": "memscan.memorization",
    "MemorizationOptions": "memscan.memorization",
    "fit_interval": "memscan.interval",
    "forgetting_quality": "memscan.interval",
    "run_attack": "memscan.attack",
    "AttackOptions": "memscan.attack",
    "unlearn": "memscan.unlearn",
    "UnlearnConfig": "memscan.unlearn",
    "load_task": "memscan.tasks",
    "evaluate_tasks": "memscan.utility",
    "EvalOptions": "memscan.utility",
    "read_config": "memscan.sweep",
    "run_sweep": "memscan.sweep",
}


def __getattr__(name):
    if name in _MODEL_SIDE:
        return getattr(import_module(_MODEL_SIDE[name]), name)
    raise AttributeError(f"module 'memscan' has no attribute {name!r}")


__all__ = ["CorpusIndex", "Document", "IndexCorruptError", "UserError", "load_tokenizer", "scan_against_index", "scan_pairs", *_MODEL_SIDE]
