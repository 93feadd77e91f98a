"""Unlearning, per sequence: GA, SGA, TA and TAU (the paper's), GA+Mismatch (its
baseline), NPO and gradient difference (the baselines of unlearning frameworks), on one
shared epoch loop.

- `config`: `UnlearnConfig` (the authors' defaults) and the method names.
- `phase`: what a method decides (selection, direction, scored weights, stopping rule).
- `ga`, `sga`, `ta`, `tau`, `mismatch`, `npo`, `gd`: one module per method.
- `loop`: the epoch loop, checkpoints and resume (`Unlearning`).
- `run`: a whole run into an output folder (`run_unlearning`): model, epochs.parquet, run.json.
"""

from typing import TYPE_CHECKING

from memscan.lazy import exports

if TYPE_CHECKING:
    from memscan.unlearn.config import METHODS, UnlearnConfig
    from memscan.unlearn.loop import EpochRecord, Unlearning, UnlearnState
    from memscan.unlearn.phase import Targets
    from memscan.unlearn.run import epochs_table, run_unlearning, unseen_targets

__all__ = [
    "METHODS",
    "EpochRecord",
    "Targets",
    "UnlearnConfig",
    "UnlearnState",
    "Unlearning",
    "epochs_table",
    "run_unlearning",
    "unseen_targets",
]

__getattr__ = exports(
    __name__,
    {
        "EpochRecord": "memscan.unlearn.loop",
        "METHODS": "memscan.unlearn.config",
        "Targets": "memscan.unlearn.phase",
        "UnlearnConfig": "memscan.unlearn.config",
        "UnlearnState": "memscan.unlearn.loop",
        "Unlearning": "memscan.unlearn.loop",
        "epochs_table": "memscan.unlearn.run",
        "run_unlearning": "memscan.unlearn.run",
        "unseen_targets": "memscan.unlearn.run",
    },
)
