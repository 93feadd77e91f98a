"""Model-side work split across processes by `accelerate launch` (2 CPU processes, gloo):
the tables are those of one process."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pyarrow.parquet as pq
import pytest

from helpers import fails_cleanly, memscan
from memscan.model.ranks import Ranks

ACCELERATE = shutil.which("accelerate", path=os.path.dirname(sys.executable)) or "accelerate"


def launch(*args, processes: int = 2) -> subprocess.CompletedProcess:
    # --multi_gpu picks accelerate's torch.distributed launcher, which starts the processes
    # on a CPU-only machine too (--cpu would start one); memscan then uses gloo.
    command = [
        ACCELERATE, "launch", "--multi_gpu", "--num_processes", str(processes), "--num_machines", "1",
        "--mixed_precision", "no", "--dynamo_backend", "no", "-m", "memscan.cli", *map(str, args),
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)


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
    result = memscan("unlearn", *sets, "--method", "ga", "-o", tmp_path / "u")
    fails_cleanly(result, "`memscan unlearn` does not split its work across processes yet")
    assert not (tmp_path / "u").exists()
