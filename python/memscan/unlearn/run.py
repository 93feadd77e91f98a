"""Unlearning a forget set into a new output folder, resumably (docs/definitions.md).

`run_unlearning()` scores the unseen set on the input model to learn the interval, runs
the method's epoch loop, and writes:
- `model/`: the unlearned model (`save_pretrained`) and its tokenizer;
- `epochs.parquet`: every epoch's per-sequence g (and EL_n), and which sequences it stepped on;
- `run.json`: settings, interval, stopping reason, timings, peak memory.
The input model is only read. While the run is unfinished, `run.json` says so and
`checkpoint.pt` holds the last finished epoch; the same command resumes from it.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pyarrow as pa
import torch

from memscan import io, memory
from memscan.attack.miau import MiauOptions, Neighbourhood
from memscan.errors import UserError
from memscan.model import sharding
from memscan.model.interval import Interval, fit_interval, forgetting_quality
from memscan.model.loading import LoadedModel
from memscan.model.memorization import score_g
from memscan.model.ranks import ONE, Ranks
from memscan.unlearn.config import RETAIN_METHODS, UnlearnConfig
from memscan.unlearn.loop import EpochRecord, Unlearning
from memscan.unlearn.phase import Targets

CHECKPOINT_FILE = "checkpoint.pt"


def fingerprint(sequences: Sequence[np.ndarray]) -> str:
    digest = hashlib.sha256()
    for s in sequences:
        digest.update(np.asarray(s, np.uint32).tobytes() + b"|")
    return digest.hexdigest()


def unseen_targets(
    loaded: LoadedModel, unseen: Sequence[np.ndarray], config: UnlearnConfig, fixed=None, ranks: Ranks = ONE
) -> Targets:
    """The interval of g over the unseen set, and the unseen mean EL_n when EL is used."""
    g, el = score_g(loaded, unseen, config.score, config.n, config.track_el, ranks)
    return Targets(fit_interval(g, fixed), None if el is None else float(el.mean()))


def run_unlearning(
    loaded: LoadedModel,
    forget: tuple[Sequence[str], Sequence[np.ndarray]],
    unseen: Sequence[np.ndarray],
    config: UnlearnConfig,
    out: Path,
    fixed_interval: tuple[float, float] | None = None,
    identity: dict | None = None,
    log=print,
    retain: Sequence[np.ndarray] | None = None,
    ranks: Ranks = ONE,
    shard: bool = False,
    guard: Sequence[np.ndarray] | None = None,
    checkpoint_seconds: float = 0.0,
) -> dict:
    """Run one method to its stopping rule and write the results into `out`; returns run.json's content.
    `retain`: the retain set of the methods that use one (config.uses_retain). Launched as
    several `ranks`, each takes its share of the work and rank 0 alone writes; `shard`:
    with the model's training state sharded across them (FSDP, model/sharding.py).
    `guard`: text whose perplexity is recorded every epoch and held under
    `config.max_ppl_ratio` times the input model's; the unseen set when a limit is set
    and no guard text is given. `checkpoint_seconds`: at least this long between checkpoints
    (0: after every update)."""
    if guard is None and config.max_ppl_ratio is not None:
        guard = unseen
    check_retain(config, retain)
    check_sharding(config, ranks, shard)
    forget_ids, forget_seqs = forget
    run_file, checkpoint = out / "run.json", out / CHECKPOINT_FILE
    identity = {
        **(identity or {}),
        "config": asdict(config),
        "forget": fingerprint(forget_seqs),
        "unseen": fingerprint(unseen),
        "retain": None if retain is None else fingerprint(retain),
        "guard": None if guard is None else fingerprint(guard),
        "fixed_interval": fixed_interval,
    }
    run = _resumable_run(out, identity)
    if run is None:
        # before the folder: a failure leaves none
        targets = unseen_targets(loaded, unseen, config, fixed_interval, ranks)
        run = {
            "identity": identity,
            "interval": targets.interval.to_dict(),
            "unseen_el_mean": targets.unseen_el_mean,
            "finished": False,
        }
        if ranks.is_main:
            out.mkdir(parents=True, exist_ok=True)
            io.write_text(json.dumps(run, indent=2), run_file)
    interval = Interval(**run["interval"])

    started = time.perf_counter()
    if loaded.device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    neighbourhood = None
    if config.miau_neighbours:  # from the input model, so a resumed run rebuilds the same neighbours
        unseen_labelled = ([f"unseen:{i}" for i in range(len(unseen))], list(unseen))
        miau = MiauOptions(config.miau_neighbours, seed=config.seed)
        neighbourhood = Neighbourhood.build(
            loaded, (list(forget_ids), list(forget_seqs)), unseen_labelled, miau, ranks=ranks
        )
        log(f"MIAU tracked every epoch: {neighbourhood.generator}")
    targets = Targets(interval, run["unseen_el_mean"])
    loop = Unlearning(
        loaded,
        forget_seqs,
        targets,
        config,
        checkpoint,
        log,
        neighbourhood,
        retain,
        ranks,
        shard,
        guard,
        checkpoint_seconds,
    )
    state = loop.run()
    log(f"stopped: {state.reason}")
    weights = sharding.full_weights(loaded.model) if loop.sharded else None  # every rank takes part
    if not ranks.is_main:
        return run

    _save_model(loaded, out / "model", weights)
    io.write_parquet(epochs_table(forget_ids, state.records), out / "epochs.parquet")
    final_g = state.records[-1].g
    run.update(
        finished=True,
        method=config.method,
        reason=state.reason,
        epochs=state.epoch,
        updates=state.updates,
        final=forgetting_quality(final_g, interval).to_dict(),
        guard_ppl=None if guard is None else {"input": state.records[0].guard_ppl, "output": state.guard_ppl},
        seconds_this_session=time.perf_counter() - started,
        update_epoch_seconds=[r.seconds for r in state.records if r.train_ce is not None],
        peak_rss_mib=memory.peak_rss_mib(),  # the process's: a library call does not reset it
        peak_cuda_mib=memory.peak_cuda_mib(loaded.device),
    )
    io.write_text(json.dumps(run, indent=2), run_file)
    checkpoint.unlink(missing_ok=True)
    return run


def check_sharding(config: UnlearnConfig, ranks: Ranks, shard: bool) -> None:
    """FSDP shards across launched processes, and not the method that holds a second model."""
    if not shard:
        return
    if config.method == "ga_mismatch":
        raise UserError("ga_mismatch keeps a second copy of the model and does not run with --fsdp")
    if ranks.size < 2:
        raise UserError("--fsdp shards the model across processes: run under accelerate launch or torchrun")


def check_retain(config: UnlearnConfig, retain: Sequence | None) -> None:
    """A retain set exactly for the methods that step on one."""
    if config.uses_retain and not retain:
        raise UserError(f"{config.method} steps on a retain set too: pass --retain FILE (text the model must keep)")
    if retain is not None and not config.uses_retain:
        raise UserError(f"{config.method} uses no retain set; --retain is for {', '.join(RETAIN_METHODS)}")


def check_resumable(out: Path) -> None:
    """Before any model is loaded: `out` is new or holds an unfinished run."""
    if not out.exists():
        return
    run = _run_file(out)
    if run.get("finished"):
        raise UserError(f"{out} already holds a finished run (choose a new output directory)")


def _run_file(out: Path) -> dict:
    try:
        return json.loads((out / "run.json").read_text())
    except (OSError, ValueError):
        raise UserError(f"{out} already exists (choose a new output directory)") from None


def _resumable_run(out: Path, identity: dict) -> dict | None:
    """run.json of an unfinished run of the same settings in `out`; None when `out` is new,
    or holds an unfinished run that never finished an epoch (nothing in it is worth keeping:
    its run.json is rewritten, so a run that failed at once can be rerun with other settings)."""
    check_resumable(out)
    if not out.exists():
        return None
    run = _run_file(out)
    if run.get("identity") != json.loads(json.dumps(identity)):
        if not (out / CHECKPOINT_FILE).exists():
            return None
        raise UserError(f"{out} holds an unfinished run with other settings or inputs (choose a new output directory)")
    return run


def _save_model(loaded: LoadedModel, folder: Path, weights: dict | None = None) -> None:
    """`weights`: the whole state dict of a sharded model (sharding.full_weights), saved
    without the copies of tied weights, as transformers saves the model itself."""
    if weights is not None:
        model = loaded.model
        tied = {n for n, _ in model.named_parameters(remove_duplicate=False)} - {n for n, _ in model.named_parameters()}
        weights = {name: tensor for name, tensor in weights.items() if name not in tied}
    partial = folder.with_name(folder.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    loaded.model.save_pretrained(partial, state_dict=weights)
    loaded.tokenizer.save_pretrained(partial)
    shutil.rmtree(folder, ignore_errors=True)
    partial.rename(folder)


def epochs_table(ids: Sequence[str], records: Sequence[EpochRecord]) -> pa.Table:
    rows = []
    for r in records:
        chosen = set(r.selected)
        for i, sid in enumerate(ids):
            rows.append(
                {
                    "epoch": r.epoch,
                    "phase": r.phase,
                    "id": sid,
                    "g": r.g[i],
                    "el": None if r.el is None else r.el[i],
                    "stepped_on": i in chosen,
                    "train_ce": r.train_ce,
                    "miau_auc": r.miau_auc,
                    "miau_pr_auc": r.miau_pr_auc,
                    "guard_ppl": r.guard_ppl,
                }
            )
    return pa.Table.from_pylist(rows)
