"""`memscan memorization | attack | unlearn` end to end on a tiny model folder, good input and bad."""

import json
import os
import signal
import subprocess
import time

import pyarrow.parquet as pq
import pytest
import torch

from helpers import MEMSCAN, fails_cleanly, memscan, write_jsonl
from tiny_model import tiny_tokenizer


def sets(ws, forget="forget.jsonl", unseen="unseen.jsonl"):
    return [ws / "tiny", "--forget", ws / forget, "--unseen", ws / unseen, "--device", "cpu"]


def test_memorization_writes_tables_and_the_forgetting_metric(workspace, tmp_path):
    result = memscan("memorization", *sets(workspace), "-o", tmp_path / "m", "--n", 4, "--k", 5)
    assert result.returncode == 0, result.stderr
    summary = json.loads((tmp_path / "m" / "summary.json").read_text())
    assert summary["forget"]["above"] >= 4 and summary["interval"]["n_unseen"] == 24
    forget = pq.read_table(tmp_path / "m" / "forget.parquet").to_pylist()
    assert [r["id"] for r in forget] == [f"f{i}" for i in range(6)]
    assert {"ma", "el_4", "extraction_strength", "extractable_5", "bleu4", "loss"} <= set(forget[0])
    assert "c(D_f)" in result.stdout


def test_memorization_matches_generations_against_a_corpus_index(workspace, tmp_path):
    built = memscan(
        "index",
        "build",
        workspace / "forget.jsonl",
        "-o",
        tmp_path / "idx",
        "--tokenizer",
        workspace / "tiny" / "tokenizer.json",
    )
    assert built.returncode == 0, built.stderr
    result = memscan(
        "memorization",
        *sets(workspace),
        "-o",
        tmp_path / "m",
        "--n",
        0,
        "--k",
        5,
        "--index",
        tmp_path / "idx",
        "--corpus-k",
        8,
    )
    assert result.returncode == 0, result.stderr
    rows = pq.read_table(tmp_path / "m" / "forget.parquet").to_pylist()
    recited = [r for r in rows if r["extractable_5"]]
    assert recited and all(r["corpus_coverage"] == 1.0 and r["corpus_top_doc_id"] == r["id"] for r in recited)


def test_attack_writes_metrics_and_a_roc_plot(workspace, tmp_path):
    result = memscan("attack", *sets(workspace), "-o", tmp_path / "a", "--neighbours", 8, "--swap-neighbours", 2)
    assert result.returncode == 0, result.stderr
    metrics = {r["attack"]: r for r in json.loads((tmp_path / "a" / "summary.json").read_text())["metrics"]}
    assert metrics["miau"]["auc"] > 0.9 and metrics["zscore"]["auc"] > 0.9
    assert "resampled from" in metrics["miau"]["neighbours"]  # every report names the generator
    assert (tmp_path / "a" / "miau_scores.parquet").exists()
    assert (tmp_path / "a" / "roc.png").read_bytes()[:4] == b"\x89PNG"


def unlearn_args(workspace, out, *extra):
    return [
        "unlearn",
        *sets(workspace),
        "--method",
        "ga",
        "--lr",
        "3e-3",
        "--max-epochs",
        8,
        "--interval",
        0.0,
        0.3,
        "-o",
        out,
        *extra,
    ]


def test_unlearn_writes_the_model_and_every_epoch(workspace, tmp_path):
    input_files = {p.name: p.read_bytes() for p in (workspace / "tiny").iterdir()}
    result = memscan(*unlearn_args(workspace, tmp_path / "u"))
    assert result.returncode == 0, result.stderr
    run = json.loads((tmp_path / "u" / "run.json").read_text())
    epochs = pq.read_table(tmp_path / "u" / "epochs.parquet").to_pandas()
    assert run["finished"] and epochs["epoch"].max() == run["epochs"]
    assert epochs.groupby("epoch")["g"].mean().iloc[-1] < epochs.groupby("epoch")["g"].mean().iloc[0]
    from transformers import AutoModelForCausalLM

    assert AutoModelForCausalLM.from_pretrained(tmp_path / "u" / "model") is not None
    assert {p.name: p.read_bytes() for p in (workspace / "tiny").iterdir()} == input_files  # input untouched
    fails_cleanly(memscan(*unlearn_args(workspace, tmp_path / "u")), "already holds a finished run")


@pytest.mark.slow
def test_unlearn_survives_kill_9_and_resumes_to_the_same_result(workspace, tmp_path):
    straight = memscan(*unlearn_args(workspace, tmp_path / "straight", "--method", "tau", "--tau-switch", 0.9))
    assert straight.returncode == 0, straight.stderr
    args = [*MEMSCAN, *map(str, unlearn_args(workspace, tmp_path / "killed", "--method", "tau", "--tau-switch", 0.9))]
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ})
    checkpoint = tmp_path / "killed" / "checkpoint.pt"
    deadline = time.time() + 120
    while not checkpoint.exists() and time.time() < deadline and process.poll() is None:
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait()
    resumed = memscan(*unlearn_args(workspace, tmp_path / "killed", "--method", "tau", "--tau-switch", 0.9))
    assert resumed.returncode == 0, resumed.stderr
    a = pq.read_table(tmp_path / "straight" / "epochs.parquet")
    b = pq.read_table(tmp_path / "killed" / "epochs.parquet")
    assert a.equals(b)
    from safetensors.torch import load_file

    wa, wb = (
        load_file(tmp_path / "straight" / "model" / "model.safetensors"),
        load_file(tmp_path / "killed" / "model" / "model.safetensors"),
    )
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)


@pytest.mark.parametrize(
    "case, message",
    [
        ("unknown-model", "the model hub cannot be reached"),
        ("tokenizer", "does not belong to this model"),
        ("empty-forget", "holds no sequences"),
        ("short", "scores need at least 11"),
        ("small-unseen", "need at least 20"),
        ("overlap", "must not overlap"),
        ("exists", "already exists"),
    ],
)
def test_bad_input_gives_one_line_and_exit_2(workspace, tmp_path, case, message):
    forget, unseen, model = workspace / "forget.jsonl", workspace / "unseen.jsonl", workspace / "tiny"
    extra, out = [], tmp_path / "out"
    if case == "unknown-model":
        model = "no-such-org/no-such-model"
    elif case == "tokenizer":
        bigger = tmp_path / "big-tokenizer"  # a vocabulary the model cannot embed
        tok = tiny_tokenizer()
        tok.add_tokens([f"extra{i}" for i in range(10)])
        tok.save_pretrained(bigger)
        extra = ["--tokenizer", bigger]
    elif case == "empty-forget":
        forget = tmp_path / "empty.jsonl"
        forget.write_text("")
    elif case == "short":
        forget = tmp_path / "short.jsonl"
        write_jsonl(forget, [{"id": "s", "text": "w1 w2 w3"}])
    elif case == "small-unseen":
        unseen = tmp_path / "few.jsonl"
        write_jsonl(unseen, [json.loads(line) for line in (workspace / "unseen.jsonl").read_text().splitlines()[:12]])
    elif case == "overlap":
        unseen = tmp_path / "overlap.jsonl"
        rows = [json.loads(line) for line in (workspace / "unseen.jsonl").read_text().splitlines()]
        rows[3]["text"] = json.loads((workspace / "forget.jsonl").read_text().splitlines()[2])["text"]
        write_jsonl(unseen, rows)
    elif case == "exists":
        out.mkdir()
    result = memscan(
        "memorization", model, "--forget", forget, "--unseen", unseen, "--device", "cpu", "-o", out, *extra
    )
    fails_cleanly(result, message)


def test_min_tokens_leaves_short_unseen_sequences_out(workspace, tmp_path):
    """The papers' Pile text holds a few short sequences: without --min-tokens they stop the
    run with a hint, with it they are left out and counted; what is left must still be enough."""
    unseen = tmp_path / "unseen.jsonl"
    rows = [json.loads(line) for line in (workspace / "unseen.jsonl").read_text().splitlines()]
    write_jsonl(unseen, [*rows, {"id": "short", "text": "w1 w2 w3"}])
    args = ["memorization", *sets(workspace, unseen=unseen), "--n", 4, "--k", 0]
    fails_cleanly(memscan(*args, "-o", tmp_path / "a"), "--min-tokens 5 leaves such unseen sequences out")
    result = memscan(*args, "-o", tmp_path / "b", "--min-tokens", 5)
    assert result.returncode == 0, result.stderr
    assert "left out 1 unseen sequences under 5 tokens" in result.stderr
    assert json.loads((tmp_path / "b" / "summary.json").read_text())["interval"]["n_unseen"] == len(rows)
    fails_cleanly(memscan(*args, "-o", tmp_path / "c", "--min-tokens", 100), "the unseen set holds 0 sequences")


def test_the_paper_preset_fills_what_the_command_line_leaves_unset(workspace, tmp_path):
    args = [
        "unlearn",
        *sets(workspace),
        "--method",
        "sga",
        "--preset",
        "paper",
        "--max-epochs",
        2,
        "-o",
        tmp_path / "u",
    ]
    result = memscan(*args)
    assert result.returncode == 0, result.stderr
    identity = json.loads((tmp_path / "u" / "run.json").read_text())["identity"]
    assert identity["config"]["max_epochs"] == 2  # given: kept
    assert identity["fixed_interval"] == [0.15, 0.6]  # not given: the authors' value
    result = memscan("memorization", *sets(workspace), "-o", tmp_path / "m", "--n", 0, "--preset", "paper")
    assert json.loads((tmp_path / "m" / "summary.json").read_text())["interval"]["source"] == "fixed"


def test_a_run_that_never_finished_an_epoch_does_not_block_a_corrected_rerun(workspace, tmp_path):
    out = tmp_path / "u"
    out.mkdir()
    (out / "run.json").write_text(json.dumps({"identity": {"config": "other settings"}, "finished": False}))
    result = memscan(*unlearn_args(workspace, out, "--max-epochs", 1))
    assert result.returncode == 0, result.stderr
    assert json.loads((out / "run.json").read_text())["finished"]


@pytest.mark.parametrize("method, phase", [("gd", "gradient-difference"), ("ga_mismatch", "ga-mismatch")])
def test_the_retain_set_methods_run_from_the_command(workspace, tmp_path, method, phase):
    retain = tmp_path / "retain.jsonl"
    rows = [json.loads(line) for line in (workspace / "unseen.jsonl").read_text().splitlines()[:8]]
    retain.write_text("".join(json.dumps({"id": f"r{i}", "text": r["text"]}) + "\n" for i, r in enumerate(rows)))
    result = memscan(*unlearn_args(workspace, tmp_path / "u", "--method", method, "--retain", retain))
    assert result.returncode == 0, result.stderr
    run = json.loads((tmp_path / "u" / "run.json").read_text())
    assert run["identity"]["retain"] and run["method"] == method
    epochs = pq.read_table(tmp_path / "u" / "epochs.parquet").to_pylist()
    assert {r["phase"] for r in epochs} == {phase}


def test_a_retain_set_only_where_a_method_uses_one(workspace, tmp_path):
    fails_cleanly(memscan(*unlearn_args(workspace, tmp_path / "a", "--method", "gd")), "pass --retain FILE")
    unseen = workspace / "unseen.jsonl"
    fails_cleanly(memscan(*unlearn_args(workspace, tmp_path / "b", "--retain", unseen)), "ga uses no retain set")
    forget = workspace / "forget.jsonl"
    overlapping = memscan(*unlearn_args(workspace, tmp_path / "c", "--method", "gd", "--retain", forget))
    fails_cleanly(overlapping, "retain sequence 'f0' is also in the forget set")
    assert not any((tmp_path / name).exists() for name in "abc")


def test_memorization_scores_the_papers_dpd_baseline(workspace, tmp_path):
    """--score ma_dpd: c(D_f) of the unchanged model under differentially private decoding,
    and the k-prompt extraction of one draw per sequence under it, seeded by --seed."""
    args = ("memorization", *sets(workspace), "--n", 0, "--k", 8, "--score", "ma_dpd", "--seed", 2)
    result = memscan(*args, "-o", tmp_path / "m")
    assert result.returncode == 0, result.stderr
    summary = json.loads((tmp_path / "m" / "summary.json").read_text())
    assert (summary["g"], summary["dpd_seed"]) == ("ma_dpd", 2)
    forget = pq.read_table(tmp_path / "m" / "forget.parquet")
    assert {"extractable_8", "extractable_8_dpd", "bleu4_dpd"} <= set(forget.column_names)
    assert summary["forget"]["mean"] == pytest.approx(sum(forget.column("ma_dpd").to_pylist()) / forget.num_rows)
    assert summary["forget"]["mean"] < sum(forget.column("ma").to_pylist()) / forget.num_rows  # sampling at T = 5


def test_memorization_counts_c_of_el_sampled_under_dpd(workspace, tmp_path):
    """--score el_dpd: EL_n of one DPD draw per prefix, seeded by --seed, as g."""
    args = ("memorization", *sets(workspace), "--n", 3, "--k", 0, "--score", "el_dpd", "--seed", 4)
    result = memscan(*args, "-o", tmp_path / "m")
    assert result.returncode == 0, result.stderr
    summary = json.loads((tmp_path / "m" / "summary.json").read_text())
    assert (summary["g"], summary["dpd_seed"]) == ("el_3_dpd", 4)
    forget = pq.read_table(tmp_path / "m" / "forget.parquet")
    sampled, greedy = forget.column("el_3_dpd").to_numpy(), forget.column("el_3").to_numpy()
    assert summary["forget"]["mean"] == pytest.approx(sampled.mean())
    assert sampled.mean() < greedy.mean()  # sampling at T = 5
    no_el = memscan("memorization", *sets(workspace), "--n", 0, "--score", "el_dpd", "-o", tmp_path / "z")
    fails_cleanly(no_el, "--score el_dpd needs --n above 0")


def test_unlearn_records_the_guard_texts_perplexity_and_holds_its_limit(workspace, tmp_path):
    guard = tmp_path / "guard.jsonl"
    guard.write_text("\n".join((workspace / "unseen.jsonl").read_text().splitlines()[:8]) + "\n")
    result = memscan(*unlearn_args(workspace, tmp_path / "u", "--guard-text", guard, "--max-ppl-ratio", 1.01))
    assert result.returncode == 0, result.stderr
    assert "guard text perplexity" in result.stdout
    run = json.loads((tmp_path / "u" / "run.json").read_text())
    assert run["guard_ppl"]["output"] <= 1.01 * run["guard_ppl"]["input"]
    epochs = pq.read_table(tmp_path / "u" / "epochs.parquet").to_pylist()
    assert all(r["guard_ppl"] is not None for r in epochs)
    limited = "raised the guard text's perplexity" in run["reason"]
    assert limited or run["reason"].startswith("mean g")


def test_guard_text_must_not_overlap_the_forget_set_and_the_limit_must_be_above_one(workspace, tmp_path):
    overlapping = memscan(*unlearn_args(workspace, tmp_path / "a", "--guard-text", workspace / "forget.jsonl"))
    fails_cleanly(overlapping, "guard sequence 'f0' is also in the forget set")
    fails_cleanly(memscan(*unlearn_args(workspace, tmp_path / "b", "--max-ppl-ratio", 1.0)), "--max-ppl-ratio")
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_unlearn_stop_inside_reports_why_it_stopped(workspace, tmp_path):
    result = memscan(*unlearn_args(workspace, tmp_path / "u", "--stop-inside", "--interval", 0.0, 0.9))
    assert result.returncode == 0, result.stderr
    run = json.loads((tmp_path / "u" / "run.json").read_text())
    assert run["identity"]["config"]["stop_inside"] is True
    assert run["reason"].startswith(("c(D_f) = 0", "mean g")) and run["final"]["above"] == 0
