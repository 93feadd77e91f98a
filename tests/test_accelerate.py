"""Model-side work split across processes by `accelerate launch` (2 CPU processes, gloo):
the tables are those of one process."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import psutil
import pyarrow.parquet as pq
import pytest
import torch
from safetensors.torch import load_file

from helpers import fails_cleanly, memscan
from memscan.model.ranks import Ranks

ACCELERATE = shutil.which("accelerate", path=os.path.dirname(sys.executable)) or "accelerate"


def launch_command(*args, processes: int = 2) -> list[str]:
    # --multi_gpu picks accelerate's torch.distributed launcher, which starts the processes
    # on a CPU-only machine too (--cpu would start one); memscan then uses gloo.
    return [
        ACCELERATE, "launch", "--multi_gpu", "--num_processes", str(processes), "--num_machines", "1",
        "--mixed_precision", "no", "--dynamo_backend", "no", "-m", "memscan.cli", *map(str, args),
    ]  # fmt: skip


def launch_env() -> dict:
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


def launch(*args, processes: int = 2) -> subprocess.CompletedProcess:
    return subprocess.run(launch_command(*args, processes=processes), capture_output=True, text=True,
                          env=launch_env(), timeout=600)  # fmt: skip


def test_blocks_cover_every_item_once_in_order():
    for n in range(0, 30):
        for size in range(1, 6):
            blocks = [Ranks(size, rank).block(n) for rank in range(size)]
            assert [i for b in blocks for i in b] == list(range(n))
            assert max(map(len, blocks)) - min(map(len, blocks)) <= 1


@pytest.mark.slow
def test_memorization_on_two_processes_writes_the_one_process_tables(workspace, tmp_path):
    sets = [workspace / "tiny", "--forget", workspace / "forget.jsonl", "--unseen", workspace / "unseen.jsonl"]
    alone = memscan("memorization", *sets, "--device", "cpu", "-o", tmp_path / "one", "--n", 4, "--k", 5)
    assert alone.returncode == 0, alone.stderr
    result = launch("memorization", *sets, "-o", tmp_path / "two", "--n", 4, "--k", 5)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "(2 processes)" in result.stderr and result.stdout.count("c(D_f) =") == 1
    for name in ("forget", "unseen"):
        one, two = (
            pq.read_table(tmp_path / "one" / f"{name}.parquet"),
            pq.read_table(tmp_path / "two" / f"{name}.parquet"),
        )
        assert one.equals(two), name
    summaries = [json.loads((tmp_path / d / "summary.json").read_text()) for d in ("one", "two")]
    assert summaries[0] == summaries[1]


def test_commands_that_do_not_split_refuse_to_run_launched(workspace, tmp_path, monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")  # as a launcher sets it in each process
    sets = [workspace / "tiny", "--forget", workspace / "forget.jsonl", "--unseen", workspace / "unseen.jsonl"]
    result = memscan("eval", sets[0], "-o", tmp_path / "e")
    fails_cleanly(result, "`memscan eval` does not split its work across processes yet")
    assert not (tmp_path / "e").exists()


@pytest.mark.slow
def test_attacks_on_two_processes_write_the_one_process_results(workspace, tmp_path):
    sets = [workspace / "tiny", "--forget", workspace / "forget.jsonl", "--unseen", workspace / "unseen.jsonl"]
    settings = ["--neighbours", 12, "--swap-neighbours", 2]  # 144 neighbours: 3 generation batches, split
    alone = memscan("attack", *sets, "--device", "cpu", "-o", tmp_path / "one", *settings)
    assert alone.returncode == 0, alone.stderr
    result = launch("attack", *sets, "-o", tmp_path / "two", *settings)
    assert result.returncode == 0, result.stderr[-3000:]
    for name in ("scores.parquet", "miau_scores.parquet"):
        assert pq.read_table(tmp_path / "one" / name).equals(pq.read_table(tmp_path / "two" / name)), name
    assert (tmp_path / "one" / "metrics.csv").read_text() == (tmp_path / "two" / "metrics.csv").read_text()


def unlearn_args(workspace, out, method, *extra):
    return [
        "unlearn", workspace / "tiny", "--forget", workspace / "forget.jsonl", "--unseen", workspace / "unseen.jsonl",
        "--method", method, "--lr", LR, "--max-epochs", 3, "--interval", 0.0, 0.3, "--micro-batch", 2,
        "-o", out, *extra,
    ]  # fmt: skip


LR = 3e-3


def assert_same_run(one, two, tolerance=1e-5):
    """Per-sequence records and weights of two runs equal up to floating-point summation order.

    Adam divides each gradient element by its own running scale, so an element whose
    micro-batch gradients nearly cancel moves by up to a few percent of the learning rate
    differently when the sum is taken in another order (measured: 6 of 49 k weights of
    the tiny model by more than 1e-5, the largest by 1.2e-4 = 0.04 lr, after 3 updates):
    the weights are held to 0.1 lr and to 0.1% of elements beyond 1e-5."""
    a, b = pq.read_table(one / "epochs.parquet").to_pandas(), pq.read_table(two / "epochs.parquet").to_pandas()
    assert list(a["epoch"]) == list(b["epoch"]) and list(a["phase"]) == list(b["phase"])
    assert list(a["stepped_on"]) == list(b["stepped_on"])
    np.testing.assert_allclose(a["g"], b["g"], atol=tolerance)
    np.testing.assert_allclose(a["train_ce"].astype(float), b["train_ce"].astype(float), rtol=tolerance)
    wa, wb = (load_file(run / "model" / "model.safetensors") for run in (one, two))
    assert wa.keys() == wb.keys()
    differences = torch.cat([(wa[k] - wb[k]).abs().flatten() for k in wa])
    assert float(differences.max()) < 0.1 * LR
    assert float((differences > tolerance).float().mean()) < 1e-3


@pytest.mark.slow
@pytest.mark.parametrize("method", ["sga", "tau", "npo", "gd", "ga_mismatch"])
def test_unlearning_on_two_processes_equals_one_process(workspace, tmp_path, method):
    retain = []
    if method in ("gd", "ga_mismatch"):  # 8 unseen texts as the retain set
        (tmp_path / "retain.jsonl").write_text("\n".join((workspace / "unseen.jsonl").read_text().splitlines()[:8]))
        retain = ["--retain", tmp_path / "retain.jsonl"]
    one = memscan(*unlearn_args(workspace, tmp_path / "one", method, "--device", "cpu", *retain))
    assert one.returncode == 0, one.stderr
    result = launch(*unlearn_args(workspace, tmp_path / "two", method, *retain))
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count("c(D_f) =") == 1
    assert_same_run(tmp_path / "one", tmp_path / "two")


@pytest.mark.slow
@pytest.mark.parametrize("method", ["ga", "sga", "tau", "npo", "gd"])
def test_sharded_unlearning_on_two_processes_equals_one_process(workspace, tmp_path, method):
    """FSDP: each process holds half of the weights, gradients and Adam's state."""
    retain = []
    if method == "gd":
        (tmp_path / "retain.jsonl").write_text("\n".join((workspace / "unseen.jsonl").read_text().splitlines()[:8]))
        retain = ["--retain", tmp_path / "retain.jsonl"]
    one = memscan(*unlearn_args(workspace, tmp_path / "one", method, "--device", "cpu", *retain))
    assert one.returncode == 0, one.stderr
    result = launch(*unlearn_args(workspace, tmp_path / "two", method, "--fsdp", *retain))
    assert result.returncode == 0, result.stderr[-3000:]
    assert_same_run(tmp_path / "one", tmp_path / "two")
    config = json.loads((tmp_path / "two" / "model" / "config.json").read_text())
    assert (
        config["architectures"] == json.loads((tmp_path / "one" / "model" / "config.json").read_text())["architectures"]
    )


def kill_after_first_checkpoint(args, out) -> None:
    """Launch `args` on 2 processes and SIGKILL the launcher and every process under it
    once `out` holds a checkpoint (torch's launcher puts its workers in process groups of
    their own, so killing the launcher's group leaves them running)."""
    process = subprocess.Popen(launch_command(*args), env=launch_env(),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    checkpoint = out / "checkpoint.pt"
    deadline = time.time() + 300
    while not checkpoint.exists() and time.time() < deadline and process.poll() is None:
        time.sleep(0.01)
    launcher = psutil.Process(process.pid)
    for each in [launcher, *launcher.children(recursive=True)]:
        each.send_signal(signal.SIGKILL)
    process.wait()
    assert checkpoint.exists() and not json.loads((out / "run.json").read_text())["finished"]


@pytest.mark.slow
def test_a_run_killed_on_two_processes_resumes_on_one(workspace, tmp_path):
    """The checkpoint holds whole weights and optimizer state, so any number of processes resumes it."""
    straight = memscan(*unlearn_args(workspace, tmp_path / "straight", "ga", "--device", "cpu", "--max-epochs", 6))
    assert straight.returncode == 0, straight.stderr
    args = unlearn_args(workspace, tmp_path / "killed", "ga", "--max-epochs", 6)
    kill_after_first_checkpoint(args, tmp_path / "killed")
    resumed = memscan(*args, "--device", "cpu")
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming after epoch" in resumed.stderr
    assert_same_run(tmp_path / "straight", tmp_path / "killed")


@pytest.mark.slow
def test_a_sharded_run_killed_after_its_switch_resumes_sharded(workspace, tmp_path):
    """TA switches at once (threshold above every g): the checkpoint holds the task-arithmetic
    base gathered whole from the shards, and the resumed run cuts it into shards again."""
    settings = ["ta", "--max-epochs", 5, "--first-threshold", 1.5]
    straight = memscan(*unlearn_args(workspace, tmp_path / "straight", *settings, "--device", "cpu"))
    assert straight.returncode == 0, straight.stderr
    args = unlearn_args(workspace, tmp_path / "killed", *settings, "--fsdp")
    kill_after_first_checkpoint(args, tmp_path / "killed")
    resumed = launch(*args)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resuming after epoch" in resumed.stderr
    assert_same_run(tmp_path / "straight", tmp_path / "killed")


def test_sharding_needs_processes_and_a_single_model_method(workspace, tmp_path):
    alone = memscan(*unlearn_args(workspace, tmp_path / "a", "ga", "--fsdp"))
    fails_cleanly(alone, "--fsdp shards the model across processes")
    retain = ["--retain", workspace / "unseen.jsonl"]
    mismatch = memscan(*unlearn_args(workspace, tmp_path / "b", "ga_mismatch", "--fsdp", *retain))
    fails_cleanly(mismatch, "ga_mismatch keeps a second copy of the model")
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
