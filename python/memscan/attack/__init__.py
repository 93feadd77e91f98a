"""Membership inference against unlearned models.

- `miau`: the paper's MIAU, a neighbourhood attack (`Neighbourhood`: candidates and
  their resampled neighbours, made once, scored under any model).
- `zscore`: memscan's two-sided test on g and the loss against a reference half of the
  unseen set, and its swap-calibrated form.
- `one_sided`: LOSS, zlib, Min-K%, Min-K%++.
- `metrics`: ROC and PR AUC, TPR at low FPR, ROC plots; `run`: every attack on one model.
"""

from memscan.attack.metrics import attack_metrics
from memscan.attack.miau import MiauOptions, Neighbourhood
from memscan.attack.options import AttackOptions
from memscan.attack.run import AttackResult, plot_roc, run_attack

__all__ = [
    "AttackOptions",
    "AttackResult",
    "MiauOptions",
    "Neighbourhood",
    "attack_metrics",
    "plot_roc",
    "run_attack",
]
