"""The epoch loop every unlearning method shares, driven by per-sequence scores.

Every epoch: score each forget sequence (on the weights the method's phase names),
record the scores, stop if the phase's rule says so, else take one full-batch update
(the effective batch is the forget set, or the phase's selection of it, in
micro-batches). Weights are fp32 masters while training. The state
after each update is checkpointed (or, with `checkpoint_seconds`, after the first update
that far from the last checkpoint), so a killed run resumes from its last checkpointed
epoch and, with the same seed, ends where an uninterrupted run would. A non-finite or
exploding loss stops the run on the last good weights and says so.

Launched as several processes (model/ranks.py), every rank holds the whole model, or
its shard of it with `shard` (FSDP, model/sharding.py): scoring is split by sequences,
each update by micro-batches, and the ranks take the same decisions on the same gathered
scores, so they stay in step; rank 0 alone writes. Checkpoints hold whole tensors, so
a run resumes on any number of processes, sharded or not.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from memscan.attack.metrics import attack_metrics
from memscan.attack.miau import Neighbourhood
from memscan.errors import UserError
from memscan.model import sharding
from memscan.model.forward import perplexity
from memscan.model.loading import LoadedModel
from memscan.model.memorization import score_g
from memscan.model.ranks import ONE, Ranks
from memscan.model.training import gradients_finite, parameters_finite, train_in_fp32
from memscan.model.weights import cpu_copy, load_weights
from memscan.unlearn import ga, gd, mismatch, npo, sga, ta, tau
from memscan.unlearn.config import UnlearnConfig
from memscan.unlearn.phase import Phase, Targets, TrainingData, Update

CHECKPOINT_FORMAT = 2  # whole tensors; the optimizer's state keyed by parameter names
START = {method.NAME: method.start for method in (ga, sga, ta, tau, npo, gd, mismatch)}


@dataclass
class EpochRecord:
    epoch: int
    phase: (
        str  # the phase's label: ascent | selective-ascent | task-arithmetic | npo | gradient-difference | ga-mismatch
    )
    g: list[float]
    el: list[float] | None
    selected: list[int]  # forget indices the update after this scoring stepped on
    train_ce: float | None  # the loss of that update (mean CE per micro-batch, averaged), before it
    seconds: float  # wall time of the epoch: scoring, and the update and checkpoint if it took one
    miau_auc: float | None = None  # the paper's MIAU on the scored weights, when tracked
    miau_pr_auc: float | None = None
    guard_ppl: float | None = None  # perplexity of the guard text on the scored weights, when given


@dataclass
class UnlearnState:
    epoch: int = 0
    phase: str = ""
    records: list[EpochRecord] = field(default_factory=list)
    reason: str | None = None  # why it stopped; None while running
    guard_ppl: float | None = None  # the guard text's perplexity on the current weights, once measured

    @property
    def updates(self) -> int:
        """Updates applied and kept: one per epoch passed. An update that a stop rule undid
        (non-finite weights, the perplexity guard) has a record with its loss but is not counted."""
        return self.epoch


class Unlearning:
    """One run of one method on one model. `run()` goes to the stopping rule."""

    def __init__(
        self,
        loaded: LoadedModel,
        forget: Sequence[np.ndarray],
        targets: Targets,
        config: UnlearnConfig,
        checkpoint: Path | None = None,
        log=None,
        neighbourhood: Neighbourhood | None = None,
        retain: Sequence[np.ndarray] | None = None,
        ranks: Ranks = ONE,
        shard: bool = False,
        guard: Sequence[np.ndarray] | None = None,
        checkpoint_seconds: float = 0.0,
    ):
        """`neighbourhood`: MIAU's candidates and neighbours (made from the input model); when
        given, the attack's ROC and PR AUC are recorded every epoch, as the authors did.
        `shard`: FSDP across the launched `ranks`. `guard`: text whose perplexity is
        recorded every epoch and held under `config.max_ppl_ratio` times the input model's.
        `checkpoint_seconds`: write the checkpoint only once this long has passed since the
        last (or the start): a checkpoint is the whole training state, 12 bytes a parameter
        and more, which takes longer to write than a large model's epoch on a GPU."""
        if config.max_ppl_ratio is not None and not guard:
            raise UserError("a perplexity limit needs guard text to measure it on")
        self.ranks, self.guard = ranks, None if guard is None else [np.asarray(s, np.uint32) for s in guard]
        self.loaded, self.forget, self.targets, self.config = (
            loaded,
            [np.asarray(s, np.uint32) for s in forget],
            targets,
            config,
        )
        self.data = TrainingData(self.forget, None if retain is None else [np.asarray(s, np.uint32) for s in retain])
        self.checkpoint, self.neighbourhood = checkpoint, neighbourhood
        self.checkpoint_seconds, self.checkpointed_at = checkpoint_seconds, time.perf_counter()
        self.log = log or (lambda message: None)
        torch.manual_seed(config.seed)
        train_in_fp32(loaded)
        if shard:
            sharding.shard(loaded.model)
        self.sharded = sharding.is_sharded(loaded.model)
        self.phase: Phase = START[config.method](config, loaded.model)
        self.state = UnlearnState(phase=self.phase.label)
        self.optimizer = self._optimizer()
        if checkpoint is not None and checkpoint.exists():
            self._resume(checkpoint)

    def _optimizer(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.loaded.model.parameters(), lr=self.config.lr, betas=self.config.betas)

    def score(self) -> tuple[np.ndarray, np.ndarray | None, dict]:
        """g (and EL_n) of every forget sequence, and MIAU's AUCs when tracked, on the phase's weights."""
        with self.phase.scored_weights(self.loaded.model), sharding.gathered(self.loaded.model):
            g, el = score_g(
                self.loaded, self.forget, self.config.score, self.config.n, self.config.track_el, self.ranks
            )
            miau = {}
            if self.neighbourhood is not None:
                values = self.neighbourhood.scores(self.loaded, ranks=self.ranks)
                row = attack_metrics(self.neighbourhood.member, {"miau": values}).to_pylist()[0]
                miau = {"miau_auc": row["auc"], "miau_pr_auc": row["pr_auc"]}
            if self.guard is not None and self.state.guard_ppl is None:
                self.state.guard_ppl = perplexity(self.loaded, self.guard, ranks=self.ranks)
        return g, el, miau

    def guard_perplexity(self) -> float:
        """The guard text's perplexity on the weights g is scored on."""
        assert self.guard is not None
        with self.phase.scored_weights(self.loaded.model), sharding.gathered(self.loaded.model):
            return perplexity(self.loaded, self.guard, ranks=self.ranks)

    def guard_exceeded(self, ppl: float) -> str | None:
        """Why the update that led to perplexity `ppl` is undone, if it breaks the limit."""
        limit, baseline = self.config.max_ppl_ratio, self.state.records[0].guard_ppl
        if limit is None or baseline is None or ppl <= limit * baseline:
            return None
        return (
            f"the update after epoch {self.state.epoch} raised the guard text's perplexity {baseline:.2f} -> "
            f"{ppl:.2f} (x{ppl / baseline:.2f} > x{limit:g}); kept epoch {self.state.epoch}"
        )

    def stop_reason(self, g: np.ndarray, el: np.ndarray | None) -> str | None:
        reason = self.phase.stop_reason(g, el, self.targets)
        interval = self.targets.interval
        if reason is None and self.config.stop_inside and ((g >= interval.lo) & (g <= interval.hi)).all():
            reason = f"c(D_f) = 0: all {len(g)} forget sequences inside [{interval.lo:.4f}, {interval.hi:.4f}]"
        if reason is None and self.state.epoch >= self.config.max_epochs:
            reason = f"reached max epochs ({self.config.max_epochs}) with mean g {g.mean():.4f} (mu_u {self.targets.interval.mu_u:.4f})"
        return reason

    def run(self) -> UnlearnState:
        model, interval = self.loaded.model, self.targets.interval
        while self.state.reason is None:
            started = time.perf_counter()
            g, el, miau = self.score()
            if not np.isfinite(g).all():
                self.state.reason = f"non-finite scores at epoch {self.state.epoch}"
                break
            if (handover := self.phase.handover(g, model)) is not None:
                self.phase, why = handover  # the optimizer's state carries over
                self.state.phase = self.phase.label
                self.log(f"epoch {self.state.epoch}: {why}")
            reason = self.stop_reason(g, el)
            micro_batches = [] if reason else self.phase.micro_batches(g, self.targets, self.config.micro_batch)
            selected = sorted(i for batch in micro_batches for i in batch)
            el_list = None if el is None else el.tolist()
            record = EpochRecord(
                self.state.epoch, self.state.phase, g.tolist(), el_list, selected, None, 0.0, **miau,
                guard_ppl=self.state.guard_ppl,
            )  # fmt: skip
            self.state.records.append(record)
            self.log(
                f"epoch {self.state.epoch} [{self.state.phase}]: mean g {g.mean():.4f}, above hi {(g > interval.hi).sum()}, below lo {(g < interval.lo).sum()}"
                + (f", MIAU AUC {miau['miau_auc']:.3f}" if miau else "")
                + (f", guard ppl {self.state.guard_ppl:.2f}" if self.state.guard_ppl is not None else "")
            )
            if reason:
                self.state.reason = reason
                record.seconds = time.perf_counter() - started
                break
            if not selected:
                self.state.reason = f"nothing left to ascend on at epoch {self.state.epoch}"
                break
            ce = self.gradient(micro_batches)
            record.train_ce = ce
            if not np.isfinite(ce) or ce > self.config.max_ce or not self.ranks.all(gradients_finite(model)):
                self.state.reason = f"loss non-finite or exploding (mean CE {ce:.4g}) at epoch {self.state.epoch}; kept epoch {self.state.epoch}"
                break
            last_good = cpu_copy(model)
            self.optimizer.step()
            model.zero_grad(set_to_none=True)
            if not self.ranks.all(parameters_finite(model)):
                load_weights(model, last_good)
                self.state.reason = (
                    f"the update after epoch {self.state.epoch} made weights non-finite; kept epoch {self.state.epoch}"
                )
                break
            if self.guard is not None:
                ppl = self.guard_perplexity()
                if reason := self.guard_exceeded(ppl):
                    load_weights(model, last_good)
                    self.state.reason = reason
                    record.seconds = time.perf_counter() - started
                    break
                self.state.guard_ppl = ppl
            self.state.epoch += 1
            self._save_checkpoint()
            record.seconds = time.perf_counter() - started  # scoring, update and checkpoint
        self.phase.finish(model)
        return self.state

    def gradient(self, micro_batches: list[list[int]]) -> float:
        """Fill .grad with the phase's full-batch gradient and return its loss. Across ranks,
        each takes its block of the micro-batches, weighted as its share of the loss
        (phase.Update), and the ranks' gradients add up: summed here, or averaged by
        FSDP's reduce-scatter over shares weighted N times."""
        epoch = self.state.epoch
        if self.ranks.size == 1:
            return self.phase.gradient(self.loaded, Update.whole(epoch, micro_batches), self.data)
        update = Update.split(epoch, micro_batches, self.ranks, lockstep=self.sharded)
        self.loaded.model.zero_grad(set_to_none=True)
        ce = self.phase.gradient(self.loaded, update, self.data) if update.mine else 0.0
        if self.sharded:
            return self.ranks.sum_value(ce) / self.ranks.size
        self.ranks.sum_gradients(self.loaded.model)
        return self.ranks.sum_value(ce)

    # ---- checkpoints -------------------------------------------------------------
    def _save_checkpoint(self) -> None:
        """Whole tensors (gathered from every rank of a sharded model), written by rank 0;
        when due on rank 0's clock, which every rank follows (gathering takes them all)."""
        if self.checkpoint is None:
            return
        due = time.perf_counter() - self.checkpointed_at >= self.checkpoint_seconds
        if not self.ranks.all(due if self.ranks.is_main else True):
            return
        model, saved = self.loaded.model, self.phase.saved_state()
        payload = {
            "format": CHECKPOINT_FORMAT,
            "state": {**asdict(self.state), "records": [asdict(r) for r in self.state.records]},
            "model": sharding.full_weights(model),
            "optimizer": sharding.optimizer_state(model, self.optimizer),
            "task_base": sharding.whole_parameters(model, saved) if saved and self.phase.keeps_weights else saved,
            "task_base_weights": self.phase.keeps_weights,
            "config": asdict(self.config),
        }
        if not self.ranks.is_main:
            return
        self.checkpoint.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.checkpoint.with_name(self.checkpoint.name + ".partial")
        torch.save(payload, tmp)
        os.replace(tmp, self.checkpoint)
        self.checkpointed_at = time.perf_counter()

    def _resume(self, checkpoint: Path) -> None:
        payload = torch.load(checkpoint, map_location="cpu", weights_only=False)
        if payload.get("format") != CHECKPOINT_FORMAT:
            raise UserError(f"{checkpoint} was written by an older memscan; rerun in a new output directory")
        if payload["config"] != asdict(self.config):
            raise UserError(f"{checkpoint} belongs to a run with other settings; use another output directory")
        model, saved = self.loaded.model, payload["task_base"]
        sharding.load_full_weights(model, payload["model"])
        state = payload["state"]
        records = [EpochRecord(**r) for r in state["records"]]
        self.state = UnlearnState(state["epoch"], state["phase"], records, None, state["guard_ppl"])
        if saved and payload["task_base_weights"]:
            saved = sharding.parameter_shards(model, saved)
        self.phase = START[self.config.method](self.config, model, saved)
        self.optimizer = self._optimizer()
        sharding.load_optimizer_state(model, self.optimizer, payload["optimizer"])
        self.log(f"resuming after epoch {self.state.epoch - 1} from {checkpoint}")
