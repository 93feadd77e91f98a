"""The bad-input catalogue: every command, every class of bad input a user can give.

Each case must end with exit code 2 and exactly one line on stderr, `memscan: error: ...`
holding the expected words; no traceback; every input file byte-identical afterwards;
and no output left behind. Cases run in process (CliRunner), each on a fresh copy of the
inputs; the model commands use the tiny test model, and every check in this file must
happen before a model is loaded (so none of these costs model time)."""

from __future__ import annotations

import gzip
import hashlib
import json
import shutil
from pathlib import Path

import pytest

from helpers import memscan, write_jsonl

OUT = "OUT"  # where a case's output goes unless the case names an input


@pytest.fixture(scope="module")
def base(workspace, tmp_path_factory):
    """Good inputs every case starts from, and the bad files the cases point at."""
    root = tmp_path_factory.mktemp("bad-inputs")
    for name in ("forget.jsonl", "unseen.jsonl"):
        shutil.copy(workspace / name, root / name)
    shutil.copytree(workspace / "tiny", root / "tiny")
    write_jsonl(root / "gen.jsonl", [{"id": f"g{i}", "text": f"In the beginning God created {i}"} for i in range(4)])
    write_jsonl(
        root / "refs.jsonl", [{"id": f"g{i}", "text": "In the beginning God created the heaven"} for i in range(3)]
    )
    assert memscan("index", "build", root / "gen.jsonl", "-o", root / "idx").returncode == 0
    (root / "empty.jsonl").write_text("")
    (root / "table.xlsx").write_text("not a format memscan reads")
    (root / "nofield.csv").write_text("doc_id,corpus,body\n1,pile,hello\n")
    (root / "malformed.jsonl").write_text('{"text": "a"}\n{"text": \n')
    (root / "deep.jsonl").write_text("[" * 100_000 + "]" * 100_000 + "\n")
    (root / "latin1.txt").write_bytes("caf\xe9".encode("latin-1"))
    (root / "notext.jsonl").write_text('{"body": "a"}\n')
    (root / "badtokens.jsonl").write_text('{"tokens": [1, "two"]}\n')
    (root / "hugetokens.jsonl").write_text('{"tokens": [1, 99999999999]}\n')
    (root / "negtokens.jsonl").write_text('{"tokens": [1, -3]}\n')
    (root / "array.jsonl").write_text("[1, 2]\n")
    data = gzip.compress(b'{"text": "hello world"}\n' * 1000)
    (root / "truncated.jsonl.gz").write_bytes(data[: len(data) // 2])
    (root / "notgzip.jsonl.gz").write_bytes(b"plain text, not gzip\n")
    (root / "broken.parquet").write_bytes(b"PAR1 but not really")
    (root / "plainfolder").mkdir()
    (root / "plainfolder" / "a.txt").write_text("a folder not written by datasets")
    (root / "existing").mkdir()
    (root / "existing.parquet").write_text("a result the user keeps")
    (root / "notamodel").mkdir()
    (root / "notamodel" / "weights.bin").write_bytes(b"\0")
    rows = [json.loads(line) for line in (root / "unseen.jsonl").read_text().splitlines()]
    write_jsonl(root / "few-unseen.jsonl", rows[:12])
    rows[3]["text"] = json.loads((root / "forget.jsonl").read_text().splitlines()[2])["text"]
    write_jsonl(root / "overlap-unseen.jsonl", rows)
    (root / "notaindex").mkdir()
    (root / "garbled-index").mkdir()
    (root / "garbled-index" / "memscan-index.json").write_text("{not json")
    shutil.copytree(root / "idx", root / "truncated-index")
    sa = next((root / "truncated-index").glob("shard-*/sa.u32"))
    sa.write_bytes(sa.read_bytes()[:-4])
    (root / "sweep-bad.toml").write_text("models = [\n")
    (root / "sweep-key.toml").write_text('models = ["smollm2-135m"]\nfrobnicate = 1\n')
    (root / "sweep-size.toml").write_text('models = ["smollm2-135m"]\nforget_sizes = [100000]\nmethods = ["ga"]\n')
    (root / "sweep-model.toml").write_text(
        'models = ["no-such-org/no-such-model"]\nmethods = ["ga"]\nimplant_lr = 1e-4\n'
    )
    (root / "sweep-method.toml").write_text('models = ["smollm2-135m"]\nmethods = ["frobnicate"]\n')
    return root


MODEL_SETS = ["{in}/tiny", "--forget", "{in}/forget.jsonl", "--unseen", "{in}/unseen.jsonl", "--device", "cpu"]
UNLEARN = ["unlearn", *MODEL_SETS, "--method", "ga"]

CATALOGUE = {
    # the command line itself
    "unknown-command": (["frobnicate"], "No such command"),
    "unknown-subcommand": (["index", "frobnicate"], "No such command"),
    "unknown-option": (["score", "{in}/gen.jsonl", "--frobnicate"], "No such option"),
    "missing-argument": (["index", "build", "-o", OUT], "Missing argument"),
    "missing-option-value": (["score", "{in}/gen.jsonl", "--k"], "requires an argument"),
    # index build: inputs
    "build-missing-input": (["index", "build", "{in}/nope.jsonl", "-o", OUT], "no such file"),
    "build-unknown-format": (["index", "build", "{in}/table.xlsx", "-o", OUT], "unknown input format"),
    "build-csv-without-field": (["index", "build", "{in}/nofield.csv", "-o", OUT], "needs a string field 'text'"),
    "build-malformed-json": (["index", "build", "{in}/malformed.jsonl", "-o", OUT], "malformed JSON"),
    "build-deep-json": (["index", "build", "{in}/deep.jsonl", "-o", OUT], "nested too deeply"),
    "build-not-utf8": (["index", "build", "{in}/latin1.txt", "-o", OUT], "not UTF-8"),
    "build-no-text-field": (["index", "build", "{in}/notext.jsonl", "-o", OUT], "needs a string field"),
    "build-bad-token-list": (["index", "build", "{in}/badtokens.jsonl", "-o", OUT], "needs a string field"),
    "build-token-too-large": (["index", "build", "{in}/hugetokens.jsonl", "-o", OUT], "99999999999"),
    "build-negative-token": (["index", "build", "{in}/negtokens.jsonl", "-o", OUT], "-3"),
    "build-json-array-line": (["index", "build", "{in}/array.jsonl", "-o", OUT], "JSON object"),
    "build-truncated-gzip": (["index", "build", "{in}/truncated.jsonl.gz", "-o", OUT], "truncated or damaged gzip"),
    "build-not-gzip": (["index", "build", "{in}/notgzip.jsonl.gz", "-o", OUT], "truncated or damaged gzip"),
    "build-broken-parquet": (["index", "build", "{in}/broken.parquet", "-o", OUT], "Parquet"),
    "build-plain-folder": (["index", "build", "{in}/plainfolder", "-o", OUT], "save_to_disk"),
    "build-empty-corpus": (["index", "build", "{in}/empty.jsonl", "-o", OUT], "empty"),
    "build-output-is-input": (["index", "build", "{in}/gen.jsonl", "-o", "{in}/gen.jsonl"], "overwrite the input"),
    "build-output-is-input-overwrite": (
        ["index", "build", "{in}/gen.jsonl", "-o", "{in}/gen.jsonl", "--overwrite"],
        "overwrite the input",
    ),
    "build-output-inside-input": (
        ["index", "build", "{in}/plainfolder", "-o", "{in}/plainfolder/idx"],
        "overwrite the input",
    ),
    "build-output-exists": (["index", "build", "{in}/gen.jsonl", "-o", "{in}/existing"], "already exists"),
    "build-output-parent-missing": (
        ["index", "build", "{in}/gen.jsonl", "-o", "{in}/no/such/idx"],
        "no such directory",
    ),
    "build-threads-zero": (["index", "build", "{in}/gen.jsonl", "-o", OUT, "--threads", 0], "--threads"),
    "build-threads-huge": (["index", "build", "{in}/gen.jsonl", "-o", OUT, "--threads", 2**70], "--threads"),
    "build-shard-tokens-zero": (["index", "build", "{in}/gen.jsonl", "-o", OUT, "--shard-tokens", 0], "--shard-tokens"),
    "build-shard-tokens-text": (
        ["index", "build", "{in}/gen.jsonl", "-o", OUT, "--shard-tokens", "x"],
        "--shard-tokens",
    ),
    "build-unknown-tokenizer": (
        ["index", "build", "{in}/gen.jsonl", "-o", OUT, "--tokenizer", "no-such-org/no-such-tok"],
        "could not be fetched",
    ),
    "build-tokenizer-not-json": (
        ["index", "build", "{in}/gen.jsonl", "-o", OUT, "--tokenizer", "{in}/table.xlsx"],
        "tokenizers JSON",
    ),
    # index info
    "info-missing": (["index", "info", "{in}/nope"], "no such index"),
    "info-not-an-index": (["index", "info", "{in}/notaindex"], "not a memscan index"),
    "info-garbled-header": (["index", "info", "{in}/garbled-index"], "unreadable index header"),
    "info-truncated": (["index", "info", "{in}/truncated-index"], "truncated"),
    # score
    "score-no-mode": (["score", "{in}/gen.jsonl", "-o", OUT], "exactly one of"),
    "score-both-modes": (
        ["score", "{in}/gen.jsonl", "--index", "{in}/idx", "--references", "{in}/refs.jsonl", "-o", OUT],
        "exactly one of",
    ),
    "score-output-is-input": (
        ["score", "{in}/gen.jsonl", "--references", "{in}/refs.jsonl", "-o", "{in}/gen.jsonl", "--overwrite"],
        "overwrite the input",
    ),
    "score-sidecar-is-input": (
        [
            "score",
            "{in}/gen.jsonl",
            "--references",
            "{in}/refs.jsonl",
            "-o",
            "{in}/gen.parquet",
            "--jsonl",
            "--overwrite",
        ],
        "overwrite the input",
    ),
    "score-output-inside-index": (
        ["score", "{in}/gen.jsonl", "--index", "{in}/idx", "-o", "{in}/idx/scores.parquet"],
        "overwrite the input",
    ),
    "score-sidecar-same-path": (
        ["score", "{in}/gen.jsonl", "--references", "{in}/refs.jsonl", "-o", "{in}/s.jsonl", "--jsonl"],
        ".parquet path",
    ),
    "score-output-exists": (
        ["score", "{in}/gen.jsonl", "--index", "{in}/idx", "-o", "{in}/existing.parquet"],
        "already exists",
    ),
    "score-k-zero": (["score", "{in}/gen.jsonl", "--index", "{in}/idx", "--k", 0, "-o", OUT], "--k"),
    "score-k-huge": (["score", "{in}/gen.jsonl", "--index", "{in}/idx", "--k", 5_000_000_000, "-o", OUT], "--k"),
    "score-n-negative": (["score", "{in}/gen.jsonl", "--references", "{in}/refs.jsonl", "--n", -1, "-o", OUT], "--n"),
    "score-missing-input": (["score", "{in}/nope.jsonl", "--index", "{in}/idx", "-o", OUT], "no such file"),
    "score-empty-input": (["score", "{in}/empty.jsonl", "--index", "{in}/idx", "-o", OUT], "holds no sequences"),
    "score-missing-references": (
        ["score", "{in}/gen.jsonl", "--references", "{in}/nope.jsonl", "-o", OUT],
        "no such file",
    ),
    "score-unaligned-references": (
        ["score", "{in}/gen.jsonl", "--references", "{in}/refs.jsonl", "-o", OUT],
        "4 generations but 3 references",
    ),
    "score-generation-shorter-than-n": (
        ["score", "{in}/gen.jsonl", "--references", "{in}/gen.jsonl", "--n", 500, "-o", OUT],
        "fewer than n",
    ),
    "score-missing-index": (["score", "{in}/gen.jsonl", "--index", "{in}/nope", "-o", OUT], "no such index"),
    "score-not-an-index": (["score", "{in}/gen.jsonl", "--index", "{in}/notaindex", "-o", OUT], "not a memscan index"),
    "score-truncated-index": (
        ["score", "{in}/gen.jsonl", "--index", "{in}/truncated-index", "-o", OUT],
        "truncated",
    ),
    "score-deep-json": (["score", "{in}/deep.jsonl", "--index", "{in}/idx", "-o", OUT], "nested too deeply"),
    "score-truncated-gzip": (
        ["score", "{in}/truncated.jsonl.gz", "--index", "{in}/idx", "-o", OUT],
        "truncated or damaged gzip",
    ),
    # memorization (every check before the model loads)
    "mem-missing-forget": (
        ["memorization", "{in}/tiny", "--forget", "{in}/nope.jsonl", "--unseen", "{in}/unseen.jsonl", "-o", OUT],
        "no such file",
    ),
    "mem-forget-is-folder": (
        ["memorization", "{in}/tiny", "--forget", "{in}/plainfolder", "--unseen", "{in}/unseen.jsonl", "-o", OUT],
        "save_to_disk",
    ),
    "mem-empty-forget": (
        ["memorization", "{in}/tiny", "--forget", "{in}/empty.jsonl", "--unseen", "{in}/unseen.jsonl", "-o", OUT],
        "holds no sequences",
    ),
    "mem-few-unseen": (
        ["memorization", "{in}/tiny", "--forget", "{in}/forget.jsonl", "--unseen", "{in}/few-unseen.jsonl", "-o", OUT],
        "at least 20",
    ),
    "mem-overlapping-sets": (
        [
            "memorization",
            "{in}/tiny",
            "--forget",
            "{in}/forget.jsonl",
            "--unseen",
            "{in}/overlap-unseen.jsonl",
            "-o",
            OUT,
        ],
        "must not overlap",
    ),
    "mem-reversed-interval": (["memorization", *MODEL_SETS, "--interval", 0.6, 0.15, "-o", OUT], "lower end"),
    "mem-nan-interval": (["memorization", *MODEL_SETS, "--interval", "nan", 0.5, "-o", OUT], "finite"),
    "mem-n-negative": (["memorization", *MODEL_SETS, "--n", -1, "-o", OUT], "--n"),
    "mem-el-without-n": (["memorization", *MODEL_SETS, "--score", "el", "--n", 0, "-o", OUT], "--score el needs"),
    "mem-unknown-score": (["memorization", *MODEL_SETS, "--score", "bleu", "-o", OUT], "--score"),
    "mem-unknown-model": (
        [
            "memorization",
            "no-such-org/no-such-model",
            "--forget",
            "{in}/forget.jsonl",
            "--unseen",
            "{in}/unseen.jsonl",
            "-o",
            OUT,
        ],
        "cannot be reached",
    ),
    "mem-not-a-model-id": (
        ["memorization", "not a model!", "--forget", "{in}/forget.jsonl", "--unseen", "{in}/unseen.jsonl", "-o", OUT],
        "hub id",
    ),
    "mem-folder-not-a-model": (
        ["memorization", "{in}/notamodel", "--forget", "{in}/forget.jsonl", "--unseen", "{in}/unseen.jsonl", "-o", OUT],
        "not a model folder",
    ),
    "mem-unknown-tokenizer": (
        ["memorization", *MODEL_SETS, "--tokenizer", "no-such-org/no-such-tok", "-o", OUT],
        "cannot be reached",
    ),
    "mem-output-is-forget": (
        ["memorization", *MODEL_SETS, "-o", "{in}/forget.jsonl", "--overwrite"],
        "overwrite the input",
    ),
    "mem-output-inside-model": (["memorization", *MODEL_SETS, "-o", "{in}/tiny/results"], "overwrite the input"),
    "mem-output-exists": (["memorization", *MODEL_SETS, "-o", "{in}/existing"], "already exists"),
    "mem-batch-size-zero": (["memorization", *MODEL_SETS, "--batch-size", 0, "-o", OUT], "--batch-size"),
    "mem-max-tokens-one": (["memorization", *MODEL_SETS, "--max-tokens", 1, "-o", OUT], "--max-tokens"),
    "mem-index-other-tokenizer": (
        ["memorization", *MODEL_SETS, "--index", "{in}/idx", "-o", OUT],
        "built with tokenizer",
    ),
    "mem-unknown-preset": (["memorization", *MODEL_SETS, "--preset", "fast", "-o", OUT], "--preset"),
    # attack
    "attack-mask-pct-zero": (["attack", *MODEL_SETS, "--mask-pct", 0, "-o", OUT], "--mask-pct"),
    "attack-reference-share": (["attack", *MODEL_SETS, "--reference-share", 0.95, "-o", OUT], "--reference-share"),
    "attack-unknown-mask-model": (
        ["attack", *MODEL_SETS, "--mask-model", "no-such-org/no-such-t5", "-o", OUT],
        "cannot be reached",
    ),
    "attack-output-is-unseen": (
        ["attack", *MODEL_SETS, "-o", "{in}/unseen.jsonl", "--overwrite"],
        "overwrite the input",
    ),
    "attack-seed-negative": (["attack", *MODEL_SETS, "--seed", -1, "-o", OUT], "--seed"),
    # unlearn
    "unlearn-betas": ([*UNLEARN, "--betas", 1.5, -0.5, "-o", OUT], "betas"),
    "unlearn-lr-zero": ([*UNLEARN, "--lr", 0, "-o", OUT], "--lr"),
    "unlearn-lr-nan": ([*UNLEARN, "--lr", "nan", "-o", OUT], "--lr"),
    "unlearn-lambda-inf": ([*UNLEARN, "--lambda", "inf", "-o", OUT], "--lambda"),
    "unlearn-unknown-method": (["unlearn", *MODEL_SETS, "--method", "frobnicate", "-o", OUT], "--method"),
    "unlearn-no-method": (["unlearn", *MODEL_SETS, "-o", OUT], "--method"),
    "unlearn-gamma-text": ([*UNLEARN, "--gamma", "high", "-o", OUT], "--gamma"),
    "unlearn-micro-batch-zero": ([*UNLEARN, "--micro-batch", 0, "-o", OUT], "--micro-batch"),
    "unlearn-output-not-a-run": ([*UNLEARN, "-o", "{in}/plainfolder"], "already exists"),
    "unlearn-output-is-model": ([*UNLEARN, "-o", "{in}/tiny"], "overwrite the input"),
    "unlearn-few-unseen": (
        [
            "unlearn",
            "{in}/tiny",
            "--forget",
            "{in}/forget.jsonl",
            "--unseen",
            "{in}/few-unseen.jsonl",
            "--method",
            "ga",
            "-o",
            OUT,
        ],
        "at least 20",
    ),
    "unlearn-reversed-interval": ([*UNLEARN, "--interval", 0.5, 0.1, "-o", OUT], "lower end"),
    # eval
    "eval-unknown-task": (["eval", "{in}/tiny", "--tasks", "frobnicate", "-o", OUT], "frobnicate"),
    "eval-limit-zero": (["eval", "{in}/tiny", "--limit", 0, "-o", OUT], "--limit"),
    "eval-paper-task-missing-file": (
        ["eval", "{in}/tiny", "--tasks", "pubmedqa={in}/nope.csv", "-o", OUT],
        "no such file",
    ),
    "eval-paper-task-wrong-file": (
        ["eval", "{in}/tiny", "--tasks", "pubmedqa={in}/nofield.csv", "-o", OUT],
        "the authors' format",
    ),
    "eval-unknown-paper-task": (
        ["eval", "{in}/tiny", "--tasks", "mmlu={in}/nofield.csv", "-o", OUT],
        "unknown paper task",
    ),
    "eval-unknown-model": (["eval", "no-such-org/no-such-model", "--tasks", "piqa", "-o", OUT], "cannot be reached"),
    "eval-output-is-model": (
        ["eval", "{in}/tiny", "--tasks", "piqa", "-o", "{in}/tiny", "--overwrite"],
        "overwrite the input",
    ),
    # sweep
    "sweep-missing-config": (["sweep", "{in}/nope.toml", "-o", OUT], "no such file"),
    "sweep-bad-toml": (["sweep", "{in}/sweep-bad.toml", "-o", OUT], "not valid TOML"),
    "sweep-unknown-key": (["sweep", "{in}/sweep-key.toml", "-o", OUT], "unknown key"),
    "sweep-unknown-method": (["sweep", "{in}/sweep-method.toml", "-o", OUT], "unknown method"),
    "sweep-impossible-size": (["sweep", "{in}/sweep-size.toml", "-o", OUT], "KJV passages"),
    "sweep-unknown-model": (["sweep", "{in}/sweep-model.toml", "-o", OUT], "cannot be reached"),
    "sweep-output-is-config": (["sweep", "{in}/sweep-size.toml", "-o", "{in}/sweep-size.toml"], "overwrite the input"),
    # demo
    "demo-epochs-zero": (["demo", "--max-epochs", 0, "-o", OUT], "--max-epochs"),
    "demo-output-exists": (["demo", "-o", "{in}/existing"], "already exists"),
    "scan-demo-output-exists": (["scan-demo", "-o", "{in}/existing"], "already exists"),
}


def _snapshot(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_the_catalogue_is_large_enough():
    assert len(CATALOGUE) >= 60


@pytest.mark.parametrize("case", list(CATALOGUE))
def test_bad_input_is_one_line_exit_2_and_harmless(base, tmp_path, case, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.chdir(tmp_path)
    inputs = tmp_path / "in"
    shutil.copytree(base, inputs)
    before = _snapshot(inputs)
    args, message = CATALOGUE[case]
    result = memscan(*[str(a).replace("{in}", str(inputs)) for a in args])
    lines = [line for line in result.stderr.replace("\r", "\n").splitlines() if line.strip()]
    assert result.returncode == 2, result.stderr
    assert len(lines) == 1 and lines[0].startswith("memscan: error: "), result.stderr
    assert message in lines[0], lines[0]
    assert "Traceback" not in result.stderr + result.stdout
    assert _snapshot(inputs) == before, "an input was changed"
    assert not (tmp_path / OUT).exists(), "an output was left behind"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in"], "a stray file was left behind"


@pytest.mark.slow
def test_the_first_use_of_a_built_in_model_keeps_the_error_one_line(base, tmp_path, tmp_path_factory, monkeypatch):
    """With a cold cache the built-in model is converted first; transformers' bars stay off stderr."""
    monkeypatch.setenv("MEMSCAN_CACHE", str(tmp_path_factory.mktemp("cold-cache")))
    test_bad_input_is_one_line_exit_2_and_harmless(base, tmp_path, "sweep-impossible-size", monkeypatch)
