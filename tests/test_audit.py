"""`memscan audit` end to end on a tiny model that memorized known documents of a small
corpus: the audit must find exactly those, forget them and show it; bad input fails
in one line before any model time."""

import json

import numpy as np
import pyarrow.parquet as pq
import pytest

from helpers import fails_cleanly, memscan, write_jsonl

MEMORIZED = {f"f{i}" for i in range(6)}  # the workspace's model recites these (to different degrees)


@pytest.fixture(scope="module")
def corpus_index(workspace, tmp_path_factory):
    """Every workspace sequence (6 memorized, 24 not) as a corpus document, and a second
    copy of f5, indexed with the model's tokenizer."""
    root = tmp_path_factory.mktemp("audit")
    f5 = json.loads((workspace / "forget.jsonl").read_text().splitlines()[5])
    write_jsonl(root / "copy.jsonl", [{"id": "copy-of-f5", "text": f5["text"]}])
    out = root / "idx"
    built = memscan(
        "index",
        "build",
        workspace / "forget.jsonl",
        workspace / "unseen.jsonl",
        root / "copy.jsonl",
        "-o",
        out,
        "--tokenizer",
        workspace / "tiny" / "tokenizer.json",
    )
    assert built.returncode == 0, built.stderr
    return out


def audit_args(workspace, index, out, *extra):
    return [
        "audit",
        workspace / "tiny",
        "--index",
        index,
        "-o",
        out,
        "--prompts",
        200,
        "--k",
        4,
        "--m",
        6,
        "--min-span",
        6,
        "--fresh-prompts",
        100,
        "--unseen-count",
        40,
        "--method",
        "ga",
        "--lr",
        "3e-3",
        "--max-epochs",
        8,
        "--miau-neighbours",
        4,
        "--tasks",
        "",
        "--chunk",
        64,
        *extra,
    ]


@pytest.fixture(scope="module")
def audited(workspace, corpus_index, tmp_path_factory):
    out = tmp_path_factory.mktemp("audit-run") / "a"
    result = memscan(*audit_args(workspace, corpus_index, out))
    assert result.returncode == 0, result.stderr
    return out, result


def test_the_audit_finds_only_the_memorized_documents(audited):
    out, result = audited
    regions = pq.read_table(out / "regions.parquet").to_pylist()
    assert regions, result.stdout
    found = {r["doc_id"] for r in regions} | {d for r in regions for d in r["copy_doc_ids"]}
    assert found <= MEMORIZED | {"copy-of-f5"}
    assert {"f4", "f5"} <= found  # the two memorized most strongly
    assert len({tuple(r["tokens"]) for r in regions}) == len(regions)  # a copy is never forgotten twice
    # the forget set holds the regions' own tokens, read back from the corpus
    forget = [json.loads(line) for line in (out / "forget.jsonl").read_text().splitlines()]
    assert [f["tokens"] for f in forget] == [r["tokens"] for r in regions]
    unseen = [json.loads(line) for line in (out / "unseen.jsonl").read_text().splitlines()]
    assert len(unseen) >= 20 and not {tuple(u["tokens"]) for u in unseen} & {tuple(f["tokens"]) for f in forget}


def test_regions_merge_overlapping_windows_of_a_document(audited):
    out, _ = audited
    regions = pq.read_table(out / "regions.parquet").to_pylist()
    places = [(p["doc"], p["start"], p["end"]) for r in regions for p in r["places"]]
    by_doc = {}
    for doc, start, end in sorted(places):
        assert doc not in by_doc or start >= by_doc[doc], "overlapping places of one document were not merged"
        by_doc[doc] = end


def test_memorized_flags_equal_their_definition(audited):
    out, _ = audited
    rows = pq.read_table(out / "find.parquet").to_pylist()
    for r in rows:
        reproduces = r["longest_match"] >= 6 or r["exact_match"] or r["approximate_match"]
        repetitive = len(set(r["generation"])) < 0.25 * len(r["generation"])
        assert r["repetitive"] == repetitive
        assert r["memorized"] == (reproduces and not repetitive)


def test_forgetting_removes_the_regions_and_the_report_says_so(audited):
    out, result = audited
    summary = json.loads((out / "summary.json").read_text())
    verified = summary["verify"]
    assert verified["generations_after"] < verified["generations_before"]
    assert verified["c_df_after"]["mean"] < verified["c_df_before"]["mean"]
    assert "miau_auc_before" in verified and "miau_auc_after" in verified
    report = (out / "report.md").read_text()
    assert "## Find" in report and "## Forget and verify" in report
    for plot in ("regions_per_document.png", "before_after.png", "span_lengths.png"):
        assert (out / plot).read_bytes()[:4] == b"\x89PNG"
    assert (out / "forget" / "model" / "config.json").exists()
    assert "regions still reproduced" in result.stdout


def test_a_finished_audit_is_not_rerun(workspace, corpus_index, audited):
    out, _ = audited
    fails_cleanly(memscan(*audit_args(workspace, corpus_index, out)), "already holds a finished audit")


def test_an_interrupted_find_resumes_from_its_parts(workspace, corpus_index, tmp_path):
    out = tmp_path / "a"
    first = memscan(*audit_args(workspace, corpus_index, out, "--find-only"))
    assert first.returncode == 0, first.stderr
    found = pq.read_table(out / "find.parquet")
    # lose the end of the find: the state, the joined table and one part
    state = json.loads((out / "audit.json").read_text())
    state["steps"] = {}
    (out / "audit.json").write_text(json.dumps(state))
    (out / "find.parquet").unlink()
    parts = sorted((out / "find").glob("part-*.parquet"))
    kept = parts[0].stat().st_mtime_ns
    parts[-1].unlink()
    again = memscan(*audit_args(workspace, corpus_index, out, "--find-only"))
    assert again.returncode == 0, again.stderr
    assert parts[0].stat().st_mtime_ns == kept  # reused, not remade
    assert pq.read_table(out / "find.parquet").equals(found)


def test_the_same_folder_with_other_settings_is_refused(workspace, corpus_index, tmp_path):
    out = tmp_path / "a"
    assert memscan(*audit_args(workspace, corpus_index, out, "--find-only")).returncode == 0
    state = json.loads((out / "audit.json").read_text())
    state["steps"].pop("report")
    (out / "audit.json").write_text(json.dumps(state))
    fails_cleanly(memscan(*audit_args(workspace, corpus_index, out, "--find-only", "--prompts", 150)), "other settings")


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--k", 30], "no document of the index holds k + m = 36 tokens"),
        (["--prompts", 100000], "--prompts 100000 is more than the"),
        (["--fresh-prompts", 100000], "--fresh-prompts 100000 is more than the"),
    ],
)
def test_bad_sizes_fail_before_any_model_time(workspace, corpus_index, tmp_path, extra, message):
    out = tmp_path / "a"
    fails_cleanly(memscan(*audit_args(workspace, corpus_index, out, *extra)), message)
    assert not out.exists()


def test_an_index_of_another_tokenizer_is_refused(workspace, kjv_index, tmp_path):
    out = tmp_path / "a"
    fails_cleanly(memscan(*audit_args(workspace, kjv_index, out)), "the index was built with tokenizer")
    assert not out.exists()


def test_an_existing_folder_that_is_no_audit_is_refused(workspace, corpus_index, tmp_path):
    out = tmp_path / "a"
    out.mkdir()
    (out / "mine.txt").write_text("keep")
    fails_cleanly(memscan(*audit_args(workspace, corpus_index, out)), "holds no audit to resume")
    assert (out / "mine.txt").read_text() == "keep"


def test_prompt_windows_are_distinct_and_inside_documents(workspace, corpus_index):
    from memscan.experiment.audit.prompts import sample_windows
    from memscan.scan.index import CorpusIndex

    index = CorpusIndex.open(corpus_index)
    windows = sample_windows(index, 300, 10, seed=3)
    lengths = index.document_lengths()
    assert len({(int(d), int(s)) for d, s in zip(windows.doc, windows.start)}) == 300
    assert np.all(windows.start + 10 <= lengths[windows.doc.astype(np.int64)])
    again = sample_windows(index, 300, 10, seed=3)
    assert np.array_equal(again.doc, windows.doc) and np.array_equal(again.start, windows.start)


def found_rows(rows):
    import pyarrow as pa

    defaults = {"kind": "prompt", "sample": 0, "match_doc": 0, "coverage": 1.0, "prefix_length": 6}
    defaults |= {"edit_similarity": 1.0, "bleu4": 1.0, "rouge_l_f1": 1.0, "approximate_match": True}
    defaults |= {"repetitive": False, "memorized": True, "match_start": 0, "longest_match": 6, "exact_match": True}
    return pa.Table.from_pylist([{**defaults, "prompt": i, **r} for i, r in enumerate(rows)])


def test_a_copy_of_a_region_is_listed_not_forgotten_twice(tmp_path):
    from memscan.experiment.audit import FindOptions
    from memscan.experiment.audit.regions import build_regions
    from memscan.scan.index import CorpusIndex, Document

    a, b = list(range(10, 30)), list(range(40, 60))
    docs = [Document(np.array(t, np.uint32), "t", name) for t, name in ((a, "a"), (a, "a-copy"), (b, "b"))]
    index = CorpusIndex.build(docs, tmp_path / "i")
    options = FindOptions(k=4, m=6, min_span=6)
    found = found_rows(
        [
            {"doc": 0, "start": 2, "generation": a[6:12]},
            {"doc": 1, "start": 2, "generation": a[6:12]},  # the same text in the copy
            {"doc": 1, "start": 8, "generation": a[12:18]},  # overlaps it: merged into one place of a-copy
            {"doc": 2, "start": 0, "generation": b[4:10], "exact_match": False, "longest_match": 7},
        ]
    )
    regions = build_regions(index, found, options, decode=str).table.to_pylist()
    assert [(r["doc_id"], r["start"], r["n_tokens"]) for r in regions] == [
        ("a", 2, 10),
        ("a-copy", 2, 16),
        ("b", 0, 10),
    ]
    # a-copy's merged place holds text of its own (tokens 12..18), so it is its own region; an exact copy joins
    exact = found_rows([{"doc": 0, "start": 2, "generation": a[6:12]}, {"doc": 1, "start": 2, "generation": a[6:12]}])
    regions = build_regions(index, exact, options, decode=str).table.to_pylist()
    assert [(r["doc_id"], r["copies"], r["copy_doc_ids"], r["n_generations"]) for r in regions] == [
        ("a", 1, ["a-copy"], 2)
    ]


def test_sampled_and_free_generations_are_scored_too(workspace, corpus_index, tmp_path):
    out = tmp_path / "a"
    args = audit_args(workspace, corpus_index, out, "--find-only", "--samples", 2, "--free", 5, "--prompts", 50)
    result = memscan(*args)
    assert result.returncode == 0, result.stderr
    rows = pq.read_table(out / "find.parquet").to_pylist()
    prompted = [r for r in rows if r["kind"] == "prompt"]
    free = [r for r in rows if r["kind"] == "free"]
    assert len(prompted) == 150 and sorted({r["sample"] for r in prompted}) == [0, 1, 2] and len(free) == 5
    assert all(r["exact_match"] is None and r["doc"] == -1 for r in free)
    assert all(len(r["generation"]) == 6 for r in rows)


def test_sampling_is_seeded_and_near_greedy_when_cold(memorized):
    from memscan.model.generation import greedy, sampled

    loaded, sequences = memorized
    prompts = [s[:5] for s in sequences[:8]]
    first = sampled(loaded, prompts, [6] * 8, temperature=1.0, seed=7)
    again = sampled(loaded, prompts, [6] * 8, temperature=1.0, seed=7)
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    cold = sampled(loaded, prompts, [6] * 8, temperature=1e-4, seed=7)
    assert all(np.array_equal(a, b) for a, b in zip(cold, greedy(loaded, prompts, [6] * 8)))


def test_a_given_unseen_set_replaces_the_proxy(workspace, corpus_index, tmp_path):
    out = tmp_path / "a"
    args = audit_args(workspace, corpus_index, out, "--unseen", workspace / "unseen.jsonl", "--max-epochs", 2)
    result = memscan(*args)
    assert result.returncode == 0, result.stderr
    unseen = [json.loads(line)["id"] for line in (out / "unseen.jsonl").read_text().splitlines()]
    assert unseen == [f"u{i}" for i in range(24)]
    assert json.loads((out / "summary.json").read_text())["verify"]["interval"]["n_unseen"] == 24


def test_a_place_belongs_to_a_region_by_overlap_or_by_a_shared_span(tmp_path):
    from memscan.experiment.audit import FindOptions
    from memscan.experiment.audit.regions import Place, build_regions
    from memscan.scan.index import CorpusIndex, Document

    a, b = list(range(10, 30)), list(range(40, 60))
    docs = [Document(np.array(t, np.uint32), "t", name) for t, name in ((a, "a"), (a, "a-copy"), (b, "b"))]
    index = CorpusIndex.build(docs, tmp_path / "i")
    found = found_rows([{"doc": 0, "start": 2, "generation": a[6:12]}])
    regions = build_regions(index, found, FindOptions(k=4, m=6, min_span=6), decode=str)
    places = [Place(0, 10, 14, -1), Place(1, 2, 12, -1), Place(1, 14, 20, -1), Place(2, 0, 10, -1)]
    tokens = [np.array(a[10:14]), np.array(a[2:12]), np.array(a[14:20]), np.array(b[0:10])]
    # overlapping its place; elsewhere but sharing its 6-token spans; elsewhere with other text; another document
    assert regions.assign(places, tokens).tolist() == [0, 0, -1, -1]
