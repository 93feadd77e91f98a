"""What one unlearning method decides, as a phase of the shared epoch loop (loop.py):
which forget sequences the next update steps on, in which direction, on which weights
g is scored, and when to stop. A method is one phase (GA, SGA, TA) or a phase that
hands over to another (TAU: selective ascent, then task arithmetic)."""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch

from memscan.model.interval import Interval


@dataclass(frozen=True)
class Targets:
    """What "forgotten" means for a run: the interval learned from unseen text (mu_u is
    its mean), and the unseen set's mean EL_n when EL is tracked."""

    interval: Interval
    unseen_el_mean: float | None = None


class Phase:
    label: ClassVar[str]  # recorded with every epoch (epochs.parquet's `phase`)
    ascent: ClassVar[bool] = True  # gradient ascent on the selection, else descent

    def scored_weights(self, model: torch.nn.Module) -> AbstractContextManager:
        """The weights g is scored on while the block runs: the model as it is."""
        return nullcontext(model)

    def select(self, g: np.ndarray, targets: Targets) -> list[int]:
        """The forget sequences the next update steps on: all of them."""
        return list(range(len(g)))

    def stop_reason(self, g: np.ndarray, el: np.ndarray | None, targets: Targets) -> str | None:
        raise NotImplementedError

    def handover(self, g: np.ndarray, model: torch.nn.Module) -> tuple[Phase, str] | None:
        """The phase that takes over before this epoch's stopping rule, and why; None to go on."""
        return None

    def saved_state(self) -> dict[str, torch.Tensor] | None:
        """What a checkpoint must keep besides the weights and the optimizer to resume this phase."""
        return None

    def finish(self, model: torch.nn.Module) -> None:
        """Turn the trained weights into the output model (nothing to do but for TA)."""
