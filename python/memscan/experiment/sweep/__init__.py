"""`memscan sweep`: which unlearning method wins at which model size and forget-set size."""

from memscan.experiment.sweep.config import SweepConfig, config_from_dict, read_config
from memscan.experiment.sweep.run import run_sweep

__all__ = ["SweepConfig", "config_from_dict", "read_config", "run_sweep"]
