"""GA, SGA, TA and TAU as one epoch loop driven by per-sequence scores (DESIGN.md section 4).

Every epoch: score each forget sequence (for TA, on the edited model), record the
scores, stop if the method's rule says so, else take one full-batch update (the
effective batch is the forget set, or SGA's selection of it). The state after each
update is checkpointed, so a killed run resumes from its last finished epoch and,
with the same seed, ends where an uninterrupted run would. A non-finite or
exploding loss stops the run on the last good weights and says so.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from memscan.errors import UserError
from memscan.interval import Interval
from memscan.memorization import MemorizationOptions, g_column, memorization_table
from memscan.models import LoadedModel
from memscan.unlearn.objectives import accumulate_gradients, gradients_finite, parameters_finite
from memscan.unlearn.task_arithmetic import TaskArithmetic, cpu_copy, load_weights

METHODS = ("ga", "sga", "ta", "tau")
SCORES = ("ma", "el", "extraction_strength")


@dataclass(frozen=True)
class UnlearnConfig:
    method: str
    lr: float = 5e-5
    betas: tuple[float, float] = (0.9, 0.98)
    max_epochs: int = 20
    gamma: float | None = 0.7  # SGA ascends on g >= gamma; None: the interval's hi
    lam: float = 3.0  # TA: theta_0 - lam (theta_ft - theta_0)
    tau_switch: float = 0.5  # TAU: SGA until mean g < this, then TA
    tau_lam: float = 1.0
    score: str = "ma"  # g: ma, el (EL_n) or extraction_strength
    n: int = 10  # EL_n's n, when g is EL or EL is tracked
    track_el: bool = False  # GA also waits for mean EL_n below its unseen mean
    micro_batch: int = 8
    max_ce: float = 100.0  # a mean token CE above this counts as exploding
    seed: int = 0

    def __post_init__(self):
        if self.method not in METHODS:
            raise UserError(f"unknown method {self.method!r} (choose from {', '.join(METHODS)})")
        if self.score not in SCORES:
            raise UserError(f"unknown score {self.score!r} for g (choose from {', '.join(SCORES)})")

    @property
    def uses_el(self) -> bool:
        return self.score == "el" or self.track_el


@dataclass
class EpochRecord:
    epoch: int
    phase: str  # ascent | selective-ascent | task-arithmetic
    g: list[float]
    el: list[float] | None
    selected: list[int]  # forget indices the update after this scoring stepped on
    train_ce: float | None  # mean token CE of that update's batch, before it
    seconds: float  # wall time of the epoch: scoring, and the update and checkpoint if it took one


@dataclass
class UnlearnState:
    epoch: int = 0
    phase: str = ""
    records: list[EpochRecord] = field(default_factory=list)
    reason: str | None = None  # why it stopped; None while running


def score_g(loaded: LoadedModel, sequences: Sequence[np.ndarray], config: UnlearnConfig) -> tuple[np.ndarray, np.ndarray | None]:
    """g of every sequence, and EL_n when the config uses it."""
    options = MemorizationOptions(n=config.n if config.uses_el else 0, k=0)
    table = memorization_table(loaded, [str(i) for i in range(len(sequences))], sequences, options)
    el = table.column(f"el_{config.n}").to_numpy() if config.uses_el else None
    return table.column(g_column(config.score, config.n)).to_numpy(), el


class Unlearning:
    """One run of one method on one model. `run()` goes to the stopping rule."""

    def __init__(
        self,
        loaded: LoadedModel,
        forget: Sequence[np.ndarray],
        interval: Interval,
        config: UnlearnConfig,
        unseen_el_mean: float | None = None,
        checkpoint: Path | None = None,
        log=None,
    ):
        self.loaded, self.forget, self.interval, self.config = loaded, [np.asarray(s, np.uint32) for s in forget], interval, config
        self.unseen_el_mean = unseen_el_mean
        self.checkpoint = checkpoint
        self.log = log or (lambda message: None)
        torch.manual_seed(config.seed)
        self.state = UnlearnState(phase="task-arithmetic" if config.method == "ta" else "ascent" if config.method == "ga" else "selective-ascent")
        self.task = TaskArithmetic(loaded.model, config.lam) if config.method == "ta" else None
        self.optimizer = self._optimizer()
        if checkpoint is not None and checkpoint.exists():
            self._resume()

    def _optimizer(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.loaded.model.parameters(), lr=self.config.lr, betas=self.config.betas)

    # ---- scoring and stopping --------------------------------------------------
    def score(self) -> tuple[np.ndarray, np.ndarray | None]:
        if self.task is not None:
            with self.task.applied(self.loaded.model):
                return score_g(self.loaded, self.forget, self.config)
        return score_g(self.loaded, self.forget, self.config)

    def stop_reason(self, g: np.ndarray, el: np.ndarray | None) -> str | None:
        mean, mu_u = float(g.mean()), self.interval.mu_u
        phase = self.state.phase
        if phase == "ascent":
            el_done = el is None or self.unseen_el_mean is None or float(el.mean()) < self.unseen_el_mean
            if mean < mu_u and el_done:
                return f"mean g {mean:.4f} < mu_u {mu_u:.4f}" + (" and mean EL below its unseen mean" if el is not None else "")
        elif phase == "selective-ascent":
            if not (g > self.interval.hi).any() and mean < mu_u:
                return f"no sequence above hi {self.interval.hi:.4f} and mean g {mean:.4f} < mu_u {mu_u:.4f}"
        elif mean < mu_u:
            return f"edited model's mean g {mean:.4f} < mu_u {mu_u:.4f}"
        if self.state.epoch >= self.config.max_epochs:
            return f"reached max epochs ({self.config.max_epochs}) with mean g {mean:.4f} (mu_u {mu_u:.4f})"
        return None

    def _switch_to_task_arithmetic(self) -> None:
        """TAU's second phase: TA with lambda tau_lam relative to the post-SGA weights."""
        self.log(f"epoch {self.state.epoch}: mean g below {self.config.tau_switch}, switching to task arithmetic")
        self.state.phase = "task-arithmetic"
        self.task = TaskArithmetic(self.loaded.model, self.config.tau_lam)
        self.optimizer = self._optimizer()

    def selection(self, g: np.ndarray) -> list[int]:
        """SGA: g >= gamma, always the most memorized one, never one already below lo."""
        if self.state.phase != "selective-ascent":
            return list(range(len(g)))
        gamma = self.interval.hi if self.config.gamma is None else self.config.gamma
        chosen = set(np.flatnonzero(g >= gamma).tolist()) | {int(np.argmax(g))}
        return sorted(i for i in chosen if g[i] >= self.interval.lo)

    # ---- the loop --------------------------------------------------------------
    def run(self) -> UnlearnState:
        model = self.loaded.model
        while self.state.reason is None:
            started = time.perf_counter()
            g, el = self.score()
            if not np.isfinite(g).all():
                self.state.reason = f"non-finite scores at epoch {self.state.epoch}"
                break
            if self.state.phase == "selective-ascent" and self.config.method == "tau" and g.mean() < self.config.tau_switch:
                self._switch_to_task_arithmetic()  # the edited model equals the current one until TA's first update
            reason = self.stop_reason(g, el)
            selected = [] if reason else self.selection(g)
            record = EpochRecord(self.state.epoch, self.state.phase, g.tolist(), None if el is None else el.tolist(), selected, None, 0.0)
            self.state.records.append(record)
            self.log(f"epoch {self.state.epoch} [{self.state.phase}]: mean g {g.mean():.4f}, above hi {(g > self.interval.hi).sum()}, below lo {(g < self.interval.lo).sum()}")
            if reason:
                self.state.reason = reason
                record.seconds = time.perf_counter() - started
                break
            if not selected:
                self.state.reason = f"nothing left to ascend on at epoch {self.state.epoch}"
                break
            ascent = self.state.phase != "task-arithmetic"
            ce = accumulate_gradients(self.loaded, [self.forget[i] for i in selected], ascent, self.config.micro_batch)
            record.train_ce = ce
            if not np.isfinite(ce) or ce > self.config.max_ce or not gradients_finite(model):
                self.state.reason = f"loss non-finite or exploding (mean CE {ce:.4g}) at epoch {self.state.epoch}; kept epoch {self.state.epoch}"
                break
            last_good = cpu_copy(model)
            self.optimizer.step()
            model.zero_grad(set_to_none=True)
            if not parameters_finite(model):
                load_weights(model, last_good)
                self.state.reason = f"the update after epoch {self.state.epoch} made weights non-finite; kept epoch {self.state.epoch}"
                break
            self.state.epoch += 1
            self._save_checkpoint()
            record.seconds = time.perf_counter() - started  # scoring, update and checkpoint
        if self.task is not None:
            self.task.apply(model)  # the edited model is the output
            self.task = None
        return self.state

    # ---- checkpoints -------------------------------------------------------------
    def _save_checkpoint(self) -> None:
        if self.checkpoint is None:
            return
        payload = {
            "state": {**asdict(self.state), "records": [asdict(r) for r in self.state.records]},
            "model": self.loaded.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "task_base": None if self.task is None else self.task.base,
            "config": asdict(self.config),
        }
        tmp = self.checkpoint.with_name(self.checkpoint.name + ".partial")
        torch.save(payload, tmp)
        os.replace(tmp, self.checkpoint)

    def _resume(self) -> None:
        payload = torch.load(self.checkpoint, map_location="cpu", weights_only=False)
        if payload["config"] != asdict(self.config):
            raise UserError(f"{self.checkpoint} belongs to a run with other settings; use another output directory")
        self.loaded.model.load_state_dict(payload["model"])
        state = payload["state"]
        self.state = UnlearnState(state["epoch"], state["phase"], [EpochRecord(**r) for r in state["records"]], None)
        if payload["task_base"] is not None:
            lam = self.config.lam if self.config.method == "ta" else self.config.tau_lam
            self.task = TaskArithmetic(self.loaded.model, lam, payload["task_base"])
            self.optimizer = self._optimizer()
        self.optimizer.load_state_dict(payload["optimizer"])
        self.log(f"resuming after epoch {self.state.epoch - 1} from {self.checkpoint}")
