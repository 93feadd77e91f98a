"""`memscan eval` and `memscan sweep` on the tiny model: outputs, per-cell caching and
resuming, and every bad input as one line with exit code 2."""

import json
import re

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

from helpers import fails_cleanly, memscan, write_jsonl
from memscan.errors import UserError
from memscan.experiment.sweep import config_from_dict, run_sweep
from memscan.experiment.sweep.run import cell_path, checkpoint_path
from memscan.model.weights import weights_digest
from tiny_model import tiny_model

TASK = [
    {"context": "w0 w1", "choices": [" w2", " w3", " w4"], "answer": 0},
    {"context": "w5", "choices": [" w6", " w7"], "answer": 1},
]


@pytest.fixture(scope="module")
def task_file(workspace):
    path = workspace / "mini.jsonl"
    write_jsonl(path, TASK)
    return path


def test_eval_writes_the_utility_table(workspace, task_file, tmp_path):
    result = memscan("eval", workspace / "tiny", "--tasks", task_file, "--device", "cpu", "-o", tmp_path / "e")
    assert result.returncode == 0, result.stderr
    rows = pq.read_table(tmp_path / "e" / "utility.parquet").to_pylist()
    assert [(r["task"], r["metric"], r["items"]) for r in rows] == [("mini", "acc", 2), ("mini", "acc_norm", 2)]
    assert all(r["ci_low"] <= r["value"] <= r["ci_high"] for r in rows)
    assert pq.read_table(tmp_path / "e" / "items_mini.parquet").num_rows == 2
    assert "mini" in result.stdout and (tmp_path / "e" / "utility.md").exists()


@pytest.mark.slow
def test_eval_samples_answers_under_private_decoding_when_asked(workspace, tmp_path):
    answers = tmp_path / "answers.jsonl"
    write_jsonl(answers, [{"context": f"w{i} w{i + 1}", "answers": [f"w{i + 2}"]} for i in range(0, 16, 2)])
    runs = {}
    for decoding in ("greedy", "dpd"):
        out = tmp_path / decoding
        result = memscan("eval", workspace / "tiny", "--tasks", answers, "--decoding", decoding, "-o", out)
        assert result.returncode == 0, result.stderr
        assert json.loads((out / "run.json").read_text())["decoding"] == decoding
        runs[decoding] = pq.read_table(out / "items_answers.parquet").column("prediction").to_pylist()
    assert runs["dpd"] != runs["greedy"]  # temperature 5 over the top 50 tokens of a 64-word vocabulary
    fails_cleanly(
        memscan("eval", workspace / "tiny", "--tasks", answers, "--decoding", "beam", "-o", tmp_path / "x"), "beam"
    )


def test_eval_refuses_bad_tasks(workspace, tmp_path):
    fails_cleanly(
        memscan("eval", workspace / "tiny", "--tasks", "arc_easy,helaswag", "-o", tmp_path / "e"),
        "unknown task 'helaswag'",
    )
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"context": "w0", "target": " w1"}\n{"context": "w0", "target": 3}\n')
    fails_cleanly(
        memscan("eval", workspace / "tiny", "--tasks", bad, "-o", tmp_path / "e"),
        "bad.jsonl:2: 'target' must be a string",
    )
    fails_cleanly(
        memscan("eval", workspace / "tiny", "--tasks", "lm-eval:hellaswag", "-o", tmp_path / "e"),
        "needs lm-evaluation-harness",
    )
    assert not (tmp_path / "e").exists()


def tiny_grid(workspace, task_file, **changes):
    raw = {
        "models": [str(workspace / "tiny")],
        "forget_sizes": [4],
        "seeds": [0],
        "methods": ["none", "ga"],
        "tokens": 16,
        "unseen_size": 20,
        "heldout_size": 4,
        "k": 8,
        "max_epochs": 2,
        "neighbours": 0,
        "miau_neighbours": 4,
        "tasks": [str(task_file)],
        "task_limit": 0,
        "device": "cpu",
        "implant_lr": 1e-4,
        **changes,
    }
    return config_from_dict(raw)


@pytest.mark.slow
def test_sweep_caches_every_cell_and_resumes(workspace, task_file, tmp_path):
    config, out = tiny_grid(workspace, task_file), tmp_path / "sweep"
    run_sweep(config, out)
    results = pq.read_table(out / "results.parquet").to_pylist()
    assert [(r["method"], r["forget_size"], r["seed"]) for r in results] == [("none", 4, 0), ("ga", 4, 0)]
    assert {
        "above",
        "below",
        "mean_g",
        "std_g",
        "miau_auc",
        "miau_pr_auc",
        "miau_tpr_at_1pct_fpr",
        "zscore_auc",
        "mini_acc",
        "utility_mean",
        "cell_seconds",
        "peak_rss_mib",
    } <= set(results[0])
    assert all(r["peak_rss_mib"] > 0 and r["peak_cuda_mib"] is None for r in results)
    none_row, ga_row = results  # the ga cell is read against its group's none cell
    assert ga_row["heldout_perplexity_ratio"] == pytest.approx(
        ga_row["heldout_perplexity"] / none_row["heldout_perplexity"]
    )
    assert ga_row["still_outside"] + ga_row["pushed_out"] == ga_row["above"] + ga_row["below"]
    from memscan.experiment.sweep.report import collect, short_commit

    record = json.loads(cell_path(out, config.models[0], 4, 0, "none").read_text())
    del record["cell"]["peak_rss_mib"]  # a cell run before the column existed, read first
    cell_path(out, config.models[0], 4, 0, "none").write_text(json.dumps(record))
    older_first = collect(config, out)[0].to_pylist()
    assert older_first[0]["peak_rss_mib"] is None and older_first[1]["peak_rss_mib"] > 0
    for name in (
        "results.csv",
        "summary.csv",
        "report.md",
        "privacy_utility_by_model.png",
        "privacy_utility_by_forget_size.png",
        "per_sequence.png",
    ):
        assert (out / name).stat().st_size > 0, name
    report = (out / "report.md").read_text()
    assert "Best method per model and forget-set size" in report
    headline = report.split("## Headline")[1].split("##")[0]
    rows = [line.split("|")[1:-1] for line in headline.splitlines() if line.startswith("|")][2:]
    assert [(row[2].strip(), row[3].strip()) for row in rows] == [("none", "1"), ("ga", "1")]
    per_sequence = report.split("## Per sequence")[1].split("## Plots")[0]
    rows = [line.split("|")[1:-1] for line in per_sequence.splitlines() if line.startswith("| ")][1:]
    assert len(rows) == len(results)
    for row, result in zip(rows, results):  # one column per forget sequence, marked as the counts say
        marks = [cell.strip()[-1] for cell in row[4:]]
        assert row[0].strip() == result["method"] and len(marks) == 4
        assert (marks.count("^"), marks.count("v")) == (result["above"], result["below"])
    commit = short_commit(json.loads(cell_path(out, config.models[0], 4, 0, "none").read_text())["code_commit"])
    assert (
        f"Cells ran on commit `{commit}` (2 cells); this report was written on `{commit}`." in report
    )  # one reading, before any write

    kept, redo = cell_path(out, config.models[0], 4, 0, "none"), cell_path(out, config.models[0], 4, 0, "ga")
    kept_before = kept.stat().st_mtime_ns
    redo.unlink()
    run_sweep(config, out)  # resumes: only the missing cell runs
    assert redo.exists() and kept.stat().st_mtime_ns == kept_before
    grown = tiny_grid(workspace, task_file, seeds=[0, 1])  # a larger grid adds cells to the same folder
    run_sweep(grown, out)
    assert kept.stat().st_mtime_ns == kept_before and pq.read_table(out / "results.parquet").num_rows == 4
    with pytest.raises(UserError, match="holds a sweep with other settings"):
        run_sweep(tiny_grid(workspace, task_file, tokens=12), out)


@pytest.mark.slow
def test_an_interrupted_cell_goes_on_from_its_checkpoint(workspace, task_file, tmp_path, monkeypatch):
    """A cell stopped right after its unlearning's first checkpoint resumes from it (the
    record says so) and ends as the uninterrupted cell did; once written, no checkpoint is left."""
    from memscan.unlearn.loop import Unlearning

    config = tiny_grid(workspace, task_file, max_epochs=3)
    model, straight, out = config.models[0], tmp_path / "straight", tmp_path / "stopped"
    run_sweep(config, straight)
    save = Unlearning._save_checkpoint

    def save_then_stop(self):
        save(self)
        raise KeyboardInterrupt

    monkeypatch.setattr(Unlearning, "_save_checkpoint", save_then_stop)
    with pytest.raises(KeyboardInterrupt):
        run_sweep(config, out, checkpoint_seconds=0)
    checkpoint = checkpoint_path(out, model, 4, 0, "ga")
    assert checkpoint.exists() and not cell_path(out, model, 4, 0, "ga").exists()
    monkeypatch.undo()
    run_sweep(config, out)  # without checkpoints of its own: the one left behind is resumed anyway
    before, after = (json.loads(cell_path(o, model, 4, 0, "ga").read_text()) for o in (straight, out))
    assert after["resumed_from_checkpoint"] and "resumed_from_checkpoint" not in before
    assert after["forget_g"] == before["forget_g"] and after["cell"]["updates"] == before["cell"]["updates"]
    assert after["cell"]["stopped"] == before["cell"]["stopped"] and not (out / "checkpoints").exists()


@pytest.mark.slow
def test_shards_split_the_groups_and_together_make_the_whole_sweep(workspace, task_file, tmp_path):
    config = tiny_grid(workspace, task_file, seeds=[0, 1], methods=["none"])
    whole, shared = tmp_path / "whole", tmp_path / "shared"
    run_sweep(config, whole)
    run_sweep(config, shared, (1, 2))
    model = config.models[0]
    assert not cell_path(shared, model, 4, 0, "none").exists() and cell_path(shared, model, 4, 1, "none").exists()
    run_sweep(config, shared, (0, 2))
    for seed in (0, 1):
        a, b = (json.loads(cell_path(d, model, 4, seed, "none").read_text()) for d in (whole, shared))
        assert (a["forget_g"], a["interval"], a["utility"]) == (b["forget_g"], b["interval"], b["utility"])
    assert pq.read_table(shared / "results.parquet").num_rows == 2  # the last shard's report holds both
    toml = tmp_path / "grid.toml"
    toml.write_text('models = ["smollm2-135m"]\n')
    for bad in ("2/2", "1", "a/b"):
        fails_cleanly(memscan("sweep", toml, "-o", tmp_path / "x", "--shard", bad), "--shard must be I/N")


@pytest.mark.parametrize(
    "toml, message",
    [
        ("models = ['smollm2-135m']\nepochs = 3\n", "unknown key 'epochs'"),
        ("methods = ['none', 'rmu']\n", "unknown method 'rmu'"),
        ("methods = ['none', 'gd']\n", "gd steps on a retain set too: set retain_file"),
        ("methods = ['none', 'gd']\nretain_file = 'nowhere.csv'\n", "nowhere.csv: no such file"),
        ("forget_sizes = [8, 0]\n", "forget-set size 0 is impossible"),
        ("unseen_size = 5\n", "unseen_size 5 is below the 20"),
        ("forget_sizes = 8\n", "'forget_sizes' must be a non-empty list"),
        ("seeds = [0, 0]\n", "'seeds' lists a value twice"),
        ("k = 64\n", "k = 64 leaves nothing to extract"),
        ("tasks = ['piqa', 'mathqa']\n", "cannot be reached"),
        ("models = [\n", "not valid TOML"),
        (
            "models = ['smollm2-135m', 'gemma3-270m']\nimplant_lr = { smollm2-135m = 1e-4 }\n",
            "implant_lr gives no rate for model 'gemma3-270m'",
        ),
        ("implant_lr = { smollm2-135m = 'fast' }\n", "'implant_lr' must be a number or a table"),
        ("implant_lr = -1e-4\n", "implant_lr > 0"),
    ],
)
def test_bad_sweep_configs_fail_in_one_line(tmp_path, toml, message):
    config = tmp_path / "grid.toml"
    config.write_text(toml)
    fails_cleanly(memscan("sweep", config, "-o", tmp_path / "out"), message)
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_a_cell_that_needs_more_passages_than_the_corpus_has_fails_cleanly(workspace, task_file, tmp_path):
    config = tmp_path / "grid.toml"
    config.write_text(
        f"models = [{json.dumps(str(workspace / 'tiny'))}]\nforget_sizes = [100000]\nmethods = ['none']\ntasks = [{json.dumps(str(task_file))}]\nimplant_lr = 1e-4\n"
    )
    fails_cleanly(memscan("sweep", config, "-o", tmp_path / "out"), "KJV passages of 64 tokens wanted")
    # the folder it left holds no cell, so a corrected config with other settings may use it
    config.write_text(
        config.read_text().replace("100000", "2")
        + "tokens = 16\nk = 8\nunseen_size = 20\nheldout_size = 2\ntask_limit = 1\n"
    )
    resumed = memscan("sweep", config, "-o", tmp_path / "out")
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads((tmp_path / "out" / "sweep.json").read_text())["tokens"] == 16


def test_seed_summaries_are_student_t_intervals_and_perplexity_is_geometric():
    from memscan.experiment.sweep.report import seed_summary

    half = 4.302652729911275 / np.sqrt(3)  # t(0.975, 2 dof) * sd 1 / sqrt(3)
    assert seed_summary("mean_g", [0.4, 0.5, 0.6], 4) == pytest.approx((0.5, 0.5 - 0.1 * half, 0.5 + 0.1 * half))
    assert seed_summary("outside_share", [0.0, 0.5, 1.0], 4) == pytest.approx(
        (0.5, 0.0, 1.0)
    )  # clipped to a share's range
    assert seed_summary("above", [0, 3], 4) == pytest.approx((1.5, 0.0, 4.0))  # and a count to the forget set's
    centre, low, high = seed_summary("novels_perplexity", [10.0, 100.0, None, 1000.0], 4)  # a missing seed is skipped
    assert centre == pytest.approx(100.0)
    assert low == pytest.approx(max(np.exp(np.log(100) - np.log(10) * half), 1.0))
    assert high == pytest.approx(np.exp(np.log(100) + np.log(10) * half))
    one = seed_summary("heldout_perplexity", [42.0], 4)
    assert one[0] == pytest.approx(42.0) and np.isnan(one[1]) and np.isnan(one[2])


def test_cells_are_read_against_their_groups_start():
    """still_outside + pushed_out = c(D_f), and the perplexity ratio, against the group's
    `none` cell; a group without one has neither (collect pairs cells with their start)."""
    from memscan.experiment.sweep.report import against_start, seed_summary

    def record(method, g, lo=0.2, hi=0.6, seed=0, ppl=20.0):
        cell = {"model": "m", "forget_size": 4, "seed": seed, "method": method, "heldout_perplexity": ppl}
        return {"cell": cell, "forget_g": g, "interval": {"lo": lo, "hi": hi}}

    start = record("none", [0.9, 0.7, 0.4, 0.3])
    after = record("ga", [0.1, 0.5, 0.1, 0.3], ppl=25.0)  # one memorized still outside (below), one pushed out
    dpd = record("dpd", [0.05, 0.05, 0.2, 0.01], lo=0.03, hi=0.1)  # its own interval; the start stays none's
    other_group = record("ga", [0.9, 0.9, 0.9, 0.9], seed=1)
    keys = ("outside_at_start", "still_outside", "pushed_out", "heldout_perplexity_ratio")
    assert against_start(after, start) == dict(zip(keys, (2, 1, 1, 1.25)))
    assert against_start(start, start) == dict(zip(keys, (2, 2, 0, 1.0)))
    assert against_start(dpd, start) == dict(zip(keys, (2, 0, 2, 1.0)))
    assert against_start(other_group, None) == dict.fromkeys(keys)
    ratio = seed_summary("heldout_perplexity_ratio", [0.5, 2.0], 4)  # geometric, and free to fall below 1
    assert ratio[0] == pytest.approx(1.0) and ratio[1] < 0.5


def test_the_implant_rate_may_be_set_per_model():
    builtin = config_from_dict({})
    assert [builtin.implant_lr_for(m) for m in ("smollm2-135m", "gemma3-270m")] == [1e-4, 1e-5]
    with pytest.raises(UserError, match="implant_lr gives no rate for model 'my/model'"):
        config_from_dict({"models": ["my/model"]})
    shared = config_from_dict({"models": ["smollm2-135m", "gemma3-270m"], "implant_lr": 1e-4})
    assert [shared.implant_lr_for(m) for m in shared.models] == [1e-4, 1e-4]
    per_model = config_from_dict(
        {
            "models": ["smollm2-135m", "gemma3-270m"],
            "implant_lr": {"smollm2-135m": 1e-4, "gemma3-270m": 2e-5, "other": 1},
        }
    )
    assert [per_model.implant_lr_for(m) for m in per_model.models] == [1e-4, 2e-5]


def test_the_paper_preset_sets_what_the_config_leaves_unset(workspace, task_file):
    paper = tiny_grid(workspace, task_file, preset="paper", max_epochs=3)
    assert paper.max_epochs == 3 and paper.fixed_interval == (0.15, 0.60)
    assert tiny_grid(workspace, task_file, fixed_interval=[0.1, 0.5]).fixed_interval == (0.1, 0.5)
    with pytest.raises(UserError, match="unknown preset 'papr'"):
        tiny_grid(workspace, task_file, preset="papr")
    with pytest.raises(UserError, match="lo must not exceed hi"):
        tiny_grid(workspace, task_file, fixed_interval=[0.5, 0.1])


def papers_files(workspace, root):
    """The workspace's sequences in the authors' CSV format: forget sets lm_extraction_4_{0,1}.csv
    (the memorized ones) and a Pile-like unseen file."""
    import csv

    def write(path, rows):
        with open(path, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["doc_id", "corpus", "text"])
            writer.writerows(rows)

    forget = [json.loads(line) for line in (workspace / "forget.jsonl").read_text().splitlines()]
    unseen = [json.loads(line) for line in (workspace / "unseen.jsonl").read_text().splitlines()]
    for seed, picked in ((0, forget[:4]), (1, forget[2:6])):
        write(root / f"lm_extraction_4_{seed}.csv", [(r["id"], "pile", r["text"]) for r in picked])
    write(root / "pile.csv", [(r["id"], "pile", r["text"]) for r in unseen])
    return str(root / "lm_extraction_{size}_{seed}.csv"), str(root / "pile.csv")


def test_without_implanting_the_forget_sets_come_from_the_papers_files(workspace, task_file, tmp_path):
    forget_files, unseen_file = papers_files(workspace, tmp_path)
    natural = {"implant": False, "forget_files": forget_files, "unseen_file": unseen_file, "id_field": "doc_id"}
    config, out = tiny_grid(workspace, task_file, seeds=[0, 1], **natural), tmp_path / "sweep"
    run_sweep(config, out)
    results = pq.read_table(out / "results.parquet").to_pylist()
    assert [(r["method"], r["seed"]) for r in results] == [("none", 0), ("ga", 0), ("none", 1), ("ga", 1)]
    record = json.loads(cell_path(out, config.models[0], 4, 1, "none").read_text())
    assert record["repeats"] == [0, 0, 0, 0] and record["interval"]["n_unseen"] == 20
    assert results[0]["above"] > 0  # the model memorized these before anything was implanted
    assert "Nothing is implanted" in (out / "report.md").read_text()


@pytest.mark.slow
def test_retain_methods_step_on_a_retain_set_drawn_outside_the_groups_sets(workspace, task_file, tmp_path):
    from memscan.experiment.sets import retain_passages
    from tiny_model import as_text, loaded, random_sequences, tiny_model

    forget_files, unseen_file = papers_files(workspace, tmp_path)
    retain_file = tmp_path / "retain.csv"
    unseen_rows = (tmp_path / "pile.csv").read_text().splitlines()[1:3]  # two that are also unseen sequences
    fresh = [f"r{i},pile,{as_text(s)}" for i, s in enumerate(random_sequences(6, 20, seed=9))]
    retain_file.write_text("\n".join(["doc_id,corpus,text", *unseen_rows, *fresh]) + "\n")
    natural = {"implant": False, "forget_files": forget_files, "unseen_file": unseen_file, "id_field": "doc_id"}
    config = tiny_grid(
        workspace, task_file, methods=["gd", "ga_mismatch"], retain_file=str(retain_file), retain_size=4, **natural
    )
    assert config.shared() == tiny_grid(workspace, task_file, **natural).shared()  # folders made before resume
    run_sweep(config, tmp_path / "sweep")
    record = json.loads(cell_path(tmp_path / "sweep", config.models[0], 4, 0, "gd").read_text())
    assert record["retain"] == {"file": str(retain_file), "size": 4}
    results = pq.read_table(tmp_path / "sweep" / "results.parquet").to_pylist()
    assert [r["method"] for r in results] == ["gd", "ga_mismatch"] and all(r["updates"] > 0 for r in results)

    from memscan.experiment.sets import PassageSets

    model = loaded(tiny_model())
    unseen = [np.asarray(model.encode([row.split(",")[2]])[0][:16], np.uint32) for row in unseen_rows]
    sets = PassageSets(([], []), (["u"], unseen[:1]), (["h"], unseen[1:]))
    drawn = retain_passages(model, retain_file, sets, 6, 16, seed=0, id_field="doc_id")
    assert len(drawn) == 6 and not {d.tobytes() for d in drawn} & {u.tobytes() for u in unseen}
    with pytest.raises(UserError, match="but the retain set needs 7"):
        retain_passages(model, retain_file, sets, 7, 16, seed=0, id_field="doc_id")


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"implant": False}, "implant = false needs forget_files"),
        (
            {"implant": False, "forget_files": "nowhere_{size}_{seed}.csv", "unseen_file": "x"},
            "nowhere_4_0.csv: no such file",
        ),
        ({"implant": False, "forget_files": "{what}.csv", "unseen_file": "x"}, "may hold only {size} and {seed}"),
        ({"implant": "no"}, "'implant' must be true or false"),
    ],
)
def test_bad_natural_grids_fail_in_one_line(workspace, task_file, changes, message):
    with pytest.raises(UserError, match=re.escape(message)):
        tiny_grid(workspace, task_file, **changes)


@pytest.mark.parametrize("name", ["sweep-paper.toml", "sweep-natural-cpu.toml"])
def test_the_committed_natural_grids_are_valid_configs(name, workspace, tmp_path):
    """Their keys and values parse; their paths are pointed at fixtures in the same formats."""
    from pathlib import Path

    from memscan.experiment.sweep.config import tomllib  # tomli before Python 3.11

    forget_files, unseen_file = papers_files(workspace, tmp_path)
    raw = tomllib.loads((Path(__file__).parent.parent / "docs" / "results" / name).read_text())
    sizes = raw["forget_sizes"]
    for size in sizes:
        for seed in raw["seeds"]:
            (tmp_path / f"lm_extraction_{size}_{seed}.csv").write_text((tmp_path / "lm_extraction_4_0.csv").read_text())
    paths = {"forget_files": forget_files, "unseen_file": unseen_file, "retain_file": unseen_file}
    config = config_from_dict({**raw, **paths})
    assert not config.implant and config.tokens == 200 and config.id_field == "doc_id"
    assert any(t.startswith("pubmedqa=") for t in config.tasks)


def test_dpd_cells_score_the_unchanged_model_under_private_decoding(workspace, task_file, tmp_path, monkeypatch):
    """The papers' DPD baseline: no update; c(D_f) of the MA expected under DPD sampling,
    against an interval fitted on the unseen set under the same decoding; the extraction
    test samples the k-prompt's continuation under it, seeded with the cell's seed."""
    from memscan.experiment import evaluate

    forget_tables = []

    def recorded(loaded, ids, sequences, options, *rest):
        table = memorization_table(loaded, ids, sequences, options, *rest)
        if options.k:  # the forget set's extraction test (the unseen sets' tables have none)
            forget_tables.append((options, table))
        return table

    memorization_table = evaluate.memorization_table
    monkeypatch.setattr(evaluate, "memorization_table", recorded)
    forget_files, unseen_file = papers_files(workspace, tmp_path)
    natural = {"implant": False, "forget_files": forget_files, "unseen_file": unseen_file, "id_field": "doc_id"}
    answers = tmp_path / "answers.jsonl"
    write_jsonl(answers, [{"context": f"w{i} w{i + 1}", "answers": [f"w{i + 2} w{i + 3}"]} for i in range(0, 40, 2)])
    tasks = {"tasks": [str(task_file), str(answers)]}
    config, out = tiny_grid(workspace, task_file, methods=["none", "dpd"], **natural, **tasks), tmp_path / "sweep"
    run_sweep(config, out)
    none, dpd = (json.loads(cell_path(out, config.models[0], 4, 0, m).read_text()) for m in ("none", "dpd"))
    assert (none["g"], dpd["g"]) == ("ma", "ma_dpd") and dpd["cell"]["updates"] == 0
    assert dpd["interval"] != none["interval"]
    assert np.mean(dpd["forget_g"]) < np.mean(none["forget_g"])  # sampled at temperature 5
    assert dpd["cell"]["heldout_perplexity"] == none["cell"]["heldout_perplexity"]  # the same weights
    (none_options, none_table), (dpd_options, dpd_table) = forget_tables
    assert (none_options.dpd_seed, dpd_options.dpd_seed) == (None, 0)
    assert none["cell"]["extractable_8"] == sum(none_table.column("extractable_8").to_pylist())
    assert dpd["cell"]["extractable_8"] == sum(dpd_table.column("extractable_8_dpd").to_pylist())
    # Likelihood-scored tasks are none's (computed once); the answers are sampled under DPD.
    by_task = [{r["task"]: r for r in cell["utility"]} for cell in (none, dpd)]
    assert by_task[0]["mini"] == by_task[1]["mini"]
    assert by_task[1]["answers"]["items"] == 20
    assert "utility_reused" not in dpd and "utility_reused" not in none
    assert "dpd" in (out / "report.md").read_text()


def test_the_weights_digest_tells_weights_apart_by_one_bit():
    model = tiny_model()
    before = weights_digest(model)
    assert weights_digest(model) == before and weights_digest(tiny_model()) == before
    with torch.no_grad():
        weight = next(model.parameters())
        weight.view(-1)[0] = torch.nextafter(weight.view(-1)[0], torch.tensor(1.0))
    assert weights_digest(model) != before


@pytest.mark.slow
def test_the_committed_paper_grid_runs_end_to_end_on_the_tiny_model(workspace, tmp_path):
    """docs/results/sweep-paper.toml as committed, every method of it, with the model,
    sizes and lengths cut to the tiny model and its files pointed at fixtures in the
    authors' formats (the hub tasks, which need a connection, left out)."""
    from pathlib import Path

    from memscan.experiment.sweep.config import tomllib
    from tiny_model import as_text, random_sequences

    forget_files, unseen_file = papers_files(workspace, tmp_path)
    fixtures = {
        "pubmed_qa.csv": 'pubid,question,context,long_answer,final_decision,abstract\n1,Does it work?,"{}",Yes.,yes,"It did."\n',
        "lambada.csv": "id,token_length,text,task\n0,5,He opened the door slowly,lambada\n",
        "dialogue.json": json.dumps({"text": {"0": ["hi , how are you", "i am fine . you ?", "great !"]}}),
        "wikitext.csv": ',text\n0,"Some held-out text about lobsters."\n',
    }
    for name, text in fixtures.items():
        (tmp_path / name).write_text(text)
    retain_file = tmp_path / "retain.csv"
    fresh = [f"r{i},pile,{as_text(s)}" for i, s in enumerate(random_sequences(6, 20, seed=9))]
    retain_file.write_text("\n".join(["doc_id,corpus,text", *fresh]) + "\n")

    raw = tomllib.loads((Path(__file__).parent.parent / "docs" / "results" / "sweep-paper.toml").read_text())
    local_tasks = []
    for task in raw["tasks"]:
        if "=" in task:
            name, path = task.split("=")
            suffix = Path(path).suffix
            fixture = {".json": "dialogue.json"}.get(suffix) or next(f for f in fixtures if f.startswith(name[:5]))
            local_tasks.append(f"{name}={tmp_path / fixture}")
    assert len(local_tasks) == 7  # pubmedqa, lambada, four dialogue sets, wikitext
    cut = {
        "models": [str(workspace / "tiny")], "forget_sizes": [4], "seeds": [0], "tokens": 16, "unseen_size": 20,
        "heldout_size": 4, "k": 8, "max_epochs": 2, "miau_neighbours": 4, "retain_size": 4, "device": "cpu",
        "forget_files": forget_files, "unseen_file": unseen_file, "retain_file": str(retain_file),
        "tasks": local_tasks,
    }  # fmt: skip
    config = config_from_dict({**raw, **cut})
    assert config.methods == tuple(raw["methods"]) and config.fixed_interval == (0.15, 0.60)  # the paper preset
    run_sweep(config, tmp_path / "sweep")
    results = pq.read_table(tmp_path / "sweep" / "results.parquet").to_pylist()
    assert [r["method"] for r in results] == raw["methods"]
    assert all(r["updates"] > 0 for r in results if r["method"] not in ("none", "dpd"))
    assert (tmp_path / "sweep" / "report.md").exists()


def test_a_perplexity_limit_joins_the_shared_settings_only_when_set(workspace, task_file):
    unset, limited = tiny_grid(workspace, task_file), tiny_grid(workspace, task_file, max_ppl_ratio=1.5)
    assert "max_ppl_ratio" not in unset.shared()  # older sweep folders resume
    assert limited.shared()["max_ppl_ratio"] == 1.5
    with pytest.raises(UserError, match="max_ppl_ratio is a ratio above 1"):
        tiny_grid(workspace, task_file, max_ppl_ratio=1)


def test_stop_inside_joins_the_shared_settings_only_when_true(workspace, task_file):
    assert "stop_inside" not in tiny_grid(workspace, task_file).shared()
    assert tiny_grid(workspace, task_file, stop_inside=True).shared()["stop_inside"] is True
    with pytest.raises(UserError, match="'stop_inside' must be true or false"):
        tiny_grid(workspace, task_file, stop_inside=1)
