"""Membership inference against unlearned models.

- `miau`: memscan's two-sided attack on g and the loss (and its neighbour-calibrated
  form) against a reference half of the unseen set: `run_attack`.
- `one_sided`: LOSS, zlib, Min-K%, Min-K%++.
- `metrics`: ROC AUC, TPR at low FPR, ROC plots.
"""

from memscan.attack.metrics import attack_metrics, plot_roc
from memscan.attack.miau import AttackOptions, AttackResult, run_attack

__all__ = ["AttackOptions", "AttackResult", "attack_metrics", "plot_roc", "run_attack"]
