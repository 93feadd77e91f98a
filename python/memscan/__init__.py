"""memscan: per-sequence measurement and unlearning of verbatim memorization.

The public API, one name per job (subpackages hold the rest: `memscan.scan`,
`memscan.model`, `memscan.attack`, `memscan.unlearn`, `memscan.eval`,
`memscan.experiment`):

- Scanner (no torch): `CorpusIndex`, `Document`, `load_tokenizer`,
  `scan_against_index`, `scan_pairs`; errors `UserError`, `IndexCorruptError`.
- Model side: `load_model`, `memorization_table`, `MemorizationOptions`, `score_g`,
  `fit_interval`, `forgetting_quality`, `run_attack`, `AttackOptions`,
  `run_unlearning`, `UnlearnConfig`.
- Utility and the sweep: `load_task`, `evaluate_tasks`, `EvalOptions`, `read_config`,
  `run_sweep`.

Model-side names are imported on first use, so `import memscan` never loads torch.
"""

from importlib import import_module

from memscan.errors import IndexCorruptError, UserError
from memscan.scan import CorpusIndex, Document, load_tokenizer, scan_against_index, scan_pairs

_ON_FIRST_USE = {
    "load_model": "memscan.model",
    "memorization_table": "memscan.model",
    "MemorizationOptions": "memscan.model",
    "score_g": "memscan.model",
    "fit_interval": "memscan.model",
    "forgetting_quality": "memscan.model",
    "run_attack": "memscan.attack",
    "AttackOptions": "memscan.attack",
    "run_unlearning": "memscan.unlearn",
    "UnlearnConfig": "memscan.unlearn",
    "load_task": "memscan.eval",
    "evaluate_tasks": "memscan.eval",
    "EvalOptions": "memscan.eval",
    "read_config": "memscan.experiment.sweep",
    "run_sweep": "memscan.experiment.sweep",
}


def __getattr__(name: str):
    if name in _ON_FIRST_USE:
        return getattr(import_module(_ON_FIRST_USE[name]), name)
    raise AttributeError(f"module 'memscan' has no attribute {name!r}")


__all__ = [
    "CorpusIndex",
    "Document",
    "IndexCorruptError",
    "UserError",
    "load_tokenizer",
    "scan_against_index",
    "scan_pairs",
    *_ON_FIRST_USE,
]
