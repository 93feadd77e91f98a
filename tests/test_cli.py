"""The `memscan` scanner commands on real text (the built-in KJV), good input and bad."""

import json
import subprocess

import click
import pyarrow.parquet as pq
import pytest

from helpers import fails_cleanly, memscan, memscan_process
from memscan.cli import main

GENESIS = "In the beginning God created the heaven and the earth. And the earth was without form, and void; and darkness [was] upon the face of the deep."


@pytest.fixture
def generations(tmp_path):
    path = tmp_path / "gens.jsonl"
    rows = [
        {"id": "verbatim", "text": GENESIS},
        {"id": "novel", "text": "Suffix arrays make exact corpus search cheap enough to run on every generation."},
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_index_info_describes_and_verifies(kjv_index):
    result = memscan("index", "info", kjv_index)
    assert result.returncode == 0, result.stderr
    assert "shards     3" in result.stdout and "verified" in result.stdout and "smollm2-135m" in result.stdout


def test_score_against_index_finds_the_verbatim_passage(kjv_index, generations, tmp_path):
    out = tmp_path / "scores.parquet"
    result = memscan("score", generations, "--index", kjv_index, "-o", out, "--jsonl", "--k", 20)
    assert result.returncode == 0, result.stderr
    table = pq.read_table(out).to_pylist()
    verbatim, novel = table
    assert verbatim["id"] == "verbatim" and verbatim["coverage"] == 1.0 and verbatim["top_doc_id"] == "kjv:1"
    assert novel["coverage"] == 0.0 and novel["top_doc"] == -1
    assert len((tmp_path / "scores.jsonl").read_text().splitlines()) == 2
    assert "2 sequences" in result.stdout


def test_score_streams_in_parts_and_writes_nothing_when_a_part_fails(kjv_index, tmp_path, monkeypatch):
    """Parts of one sequence give the table and JSONL of one part; a failure in a later
    part leaves neither output nor a temporary behind."""
    from memscan.cli import score as score_command

    gens = tmp_path / "many.jsonl"
    texts = [GENESIS, "Suffix arrays make corpus search cheap.", GENESIS[40:], "nothing from the corpus here at all"]
    gens.write_text("".join(json.dumps({"id": f"g{i}", "text": t}) + "\n" for i, t in enumerate(texts)))
    whole, parts = tmp_path / "whole.parquet", tmp_path / "parts.parquet"
    assert memscan("score", gens, "--index", kjv_index, "-o", whole, "--jsonl").returncode == 0
    monkeypatch.setattr(score_command, "SCAN_CHUNK", 1)
    result = memscan("score", gens, "--index", kjv_index, "-o", parts, "--jsonl")
    assert result.returncode == 0, result.stderr
    assert pq.read_table(parts).to_pylist() == pq.read_table(whole).to_pylist()
    assert parts.with_suffix(".jsonl").read_text() == whole.with_suffix(".jsonl").read_text()
    assert "4 sequences" in result.stdout and pq.ParquetFile(parts).num_row_groups == 4

    calls = []

    def fails_on_the_third_part(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise OSError(28, "No space left on device")
        return real(*args, **kwargs)

    real = score_command.scan_against_index
    monkeypatch.setattr(score_command, "scan_against_index", fails_on_the_third_part)
    failed = tmp_path / "failed.parquet"
    fails_cleanly(memscan("score", gens, "--index", kjv_index, "-o", failed, "--jsonl"), "No space left on device")
    assert not failed.exists() and not failed.with_suffix(".jsonl").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_score_pairs(tmp_path):
    gens, refs = tmp_path / "g.jsonl", tmp_path / "r.jsonl"
    gens.write_text(
        json.dumps({"id": "a", "text": GENESIS})
        + "\n"
        + json.dumps({"id": "b", "text": "the earth was without form"})
        + "\n"
    )
    refs.write_text(
        json.dumps({"id": "b", "text": "and the earth was without form"})
        + "\n"
        + json.dumps({"id": "a", "text": GENESIS})
        + "\n"
    )
    out = tmp_path / "p.parquet"
    result = memscan("score", gens, "--references", refs, "-o", out, "--n", 3)
    assert result.returncode == 0, result.stderr
    a, b = pq.read_table(out).to_pylist()
    assert a["exact_match"] and a["overlap_3"] == 1.0
    assert not b["exact_match"] and b["rouge_l_recall"] < 1.0 < b["rouge_l_recall"] + 0.5


def test_output_is_never_overwritten_silently(kjv_index, generations, tmp_path):
    out = tmp_path / "scores.parquet"
    out.write_text("precious")
    fails_cleanly(memscan("score", generations, "--index", kjv_index, "-o", out), "already exists")
    assert out.read_text() == "precious"
    assert memscan("score", generations, "--index", kjv_index, "-o", out, "--overwrite").returncode == 0


def test_missing_input(kjv_index, tmp_path):
    fails_cleanly(
        memscan("score", tmp_path / "nope.jsonl", "--index", kjv_index, "-o", tmp_path / "o.parquet"), "no such file"
    )


def test_malformed_jsonl_names_the_line(kjv_index, tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "fine"}\n{"text": broken}\n')
    fails_cleanly(
        memscan("score", bad, "--index", kjv_index, "-o", tmp_path / "o.parquet"), "bad.jsonl:2: malformed JSON"
    )


def test_empty_corpus(tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text(json.dumps({"text": ""}) + "\n")
    fails_cleanly(memscan("index", "build", empty, "-o", tmp_path / "i"), "corpus is empty")
    assert not (tmp_path / "i").exists()


def test_not_an_index_and_truncated_index(kjv_index, generations, tmp_path):
    (tmp_path / "not-an-index").mkdir()
    fails_cleanly(
        memscan("score", generations, "--index", tmp_path / "not-an-index", "-o", tmp_path / "o.parquet"),
        "not a memscan index",
    )
    copy = tmp_path / "copy"
    subprocess.run(["cp", "-r", kjv_index, copy], check=True)
    sa = copy / "shard-00001" / "sa.u32"
    sa.write_bytes(sa.read_bytes()[:100])
    fails_cleanly(memscan("index", "info", copy), "truncated")


def test_checksum_failure(kjv_index, tmp_path):
    copy = tmp_path / "copy"
    subprocess.run(["cp", "-r", kjv_index, copy], check=True)
    names = copy / "documents.parquet"  # damage the structural checks on opening cannot see
    data = bytearray(names.read_bytes())
    data[len(data) // 2] ^= 1
    names.write_bytes(bytes(data))
    fails_cleanly(memscan("index", "info", copy), "checksum mismatch")


def test_other_tokenizer_is_refused(kjv_index, generations, tmp_path):
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tok = Tokenizer(models.WordLevel(unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.train_from_iterator([GENESIS], trainers.WordLevelTrainer(special_tokens=["[UNK]"]))
    tok.save(str(tmp_path / "tokenizer.json"))
    fails_cleanly(
        memscan(
            "score",
            generations,
            "--index",
            kjv_index,
            "--tokenizer",
            tmp_path / "tokenizer.json",
            "-o",
            tmp_path / "o.parquet",
        ),
        "built with tokenizer 'smollm2-135m'",
    )


def test_token_ids_out_of_range(kjv_index, tmp_path):
    ids = tmp_path / "ids.jsonl"
    ids.write_text(json.dumps({"id": "x", "tokens": [1, 2, 10_000_000]}) + "\n")
    fails_cleanly(
        memscan("score", ids, "--index", kjv_index, "-o", tmp_path / "o.parquet"), "token id 10000000 is out of range"
    )


def test_sequences_shorter_than_n(tmp_path):
    gens, refs = tmp_path / "g.jsonl", tmp_path / "r.jsonl"
    gens.write_text(json.dumps({"text": "In the"}) + "\n")
    refs.write_text(json.dumps({"text": "In the beginning"}) + "\n")
    fails_cleanly(memscan("score", gens, "--references", refs, "-o", tmp_path / "o.parquet"), "fewer than n = 10")


def test_score_needs_exactly_one_target(generations, tmp_path):
    fails_cleanly(memscan("score", generations, "-o", tmp_path / "o.parquet"), "exactly one of --index")


@pytest.mark.slow
def test_demo_runs_end_to_end(tmp_path):
    result = memscan_process("scan-demo", "-o", tmp_path / "demo", env={"MEMSCAN_CACHE": str(tmp_path / "cache")})
    assert result.returncode == 0, result.stderr
    report = (tmp_path / "demo" / "report.md").read_text()
    assert "verbatim:genesis-creation" in report
    rows = {r["id"]: r for r in pq.read_table(tmp_path / "demo" / "scan.parquet").to_pylist()}
    assert rows["verbatim:john-3-16"]["coverage"] == 1.0
    assert rows["new:new-unlearning"]["coverage"] == 0.0
    assert 0 < rows["quote-in-new-text"]["coverage"] < 1


def test_an_interrupted_score_leaves_neither_file_nor_a_temporary(generations, tmp_path, monkeypatch):
    """The Parquet table and its JSONL sidecar are committed together: an interruption while
    the second is written leaves neither (and no temporary file), so the rerun is not refused."""
    from memscan import io

    def interrupted(_table):
        def write(_tmp):
            raise KeyboardInterrupt

        return write

    monkeypatch.setattr(io, "jsonl", interrupted)
    out = tmp_path / "out" / "s.parquet"
    out.parent.mkdir()
    args = ["score", generations, "--references", generations, "-o", out, "--jsonl", "--n", 0]
    result = memscan(*args)
    assert result.returncode == 130 and "memscan: interrupted" in result.stderr
    assert list(out.parent.iterdir()) == []
    monkeypatch.undo()
    assert memscan(*args).returncode == 0
    assert sorted(p.name for p in out.parent.iterdir()) == ["s.jsonl", "s.parquet"]


def test_max_tokens_cuts_every_document_and_sequence(generations, tmp_path):
    """--max-tokens: the first N tokens of each record (the papers' T = 200), for indexes and scores."""
    from memscan.scan.index import CorpusIndex

    result = memscan("index", "build", generations, "-o", tmp_path / "idx", "--max-tokens", 5)
    assert result.returncode == 0, result.stderr
    index = CorpusIndex.open(tmp_path / "idx")
    assert [index.document(i).size for i in range(index.n_documents)] == [5, 5]
    out = tmp_path / "s.parquet"
    result = memscan("score", generations, "--index", tmp_path / "idx", "-o", out, "--max-tokens", 7, "--k", 5)
    assert result.returncode == 0, result.stderr
    table = pq.read_table(out)
    assert table.column("n_tokens").to_pylist() == [7, 7]
    assert table.column("longest_match").to_pylist()[0] == 5


def test_an_eof_error_anywhere_is_one_line_not_an_interrupt():
    """click turns EOFError into Abort (it would print `memscan: interrupted`)."""
    import click
    from click.testing import CliRunner

    from memscan.cli.options import Memscan

    @click.group(cls=Memscan)
    def group():
        pass

    @group.command()
    def reads():
        raise EOFError("Compressed file ended before the end-of-stream marker was reached")

    result = CliRunner().invoke(group, ["reads"])
    assert result.exit_code == 2
    assert [line for line in result.stderr.splitlines() if line] == [
        "memscan: error: an input ended early (Compressed file ended before the end-of-stream marker was reached)"
    ]


def _commands(command, path):
    """Every leaf command under `command`, with the words that call it."""
    if not isinstance(command, click.Group):
        yield path, command
        return
    context = click.Context(command)
    for name in command.list_commands(context):
        yield from _commands(command.get_command(context, name), [*path, name])


def test_every_option_says_what_it_does():
    """Each command's options have help, and an unbounded number shows no range (click's `x<=None`)."""
    for path, command in _commands(main, ["memscan"]):
        text = command.get_help(click.Context(command, info_name=" ".join(path)))
        assert "None" not in text, path
        silent = [p.opts[0] for p in command.params if isinstance(p, click.Option) and not p.help]
        assert silent == [], (path, silent)
