"""Every input format reads to the same records."""

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from memscan.errors import UserError
from memscan.scan.readers import read_records

ROWS = [{"id": "a", "text": "first document"}, {"id": "b", "text": "second document"}]


def texts(path, **kw):
    return [(r.id, r.text) for r in read_records(path, **kw)]


def test_jsonl_parquet_and_datasets_folder_agree(tmp_path):
    jsonl = tmp_path / "c.jsonl"
    jsonl.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    parquet = tmp_path / "c.parquet"
    pq.write_table(pa.Table.from_pylist(ROWS), parquet)
    import datasets

    datasets.Dataset.from_list(ROWS).save_to_disk(str(tmp_path / "ds"))
    expected = [("a", "first document"), ("b", "second document")]
    assert texts(jsonl) == texts(parquet) == texts(tmp_path / "ds") == expected


def test_plain_text_whole_file_or_lines(tmp_path):
    path = tmp_path / "t.txt"
    path.write_text("one\n\ntwo\n")
    assert texts(path) == [("t.txt", "one\n\ntwo\n")]
    assert texts(path, split_lines=True) == [("t.txt:1", "one"), ("t.txt:3", "two")]


def test_records_without_text_or_tokens_are_refused(tmp_path):
    path = tmp_path / "c.jsonl"
    path.write_text('{"body": "x"}\n')
    with pytest.raises(UserError, match="c.jsonl:1: needs a string field 'text'"):
        list(read_records(path))


def test_token_records(tmp_path):
    path = tmp_path / "c.jsonl"
    path.write_text('{"tokens": [1, 2, 3]}\n')
    assert [r.tokens for r in read_records(path)] == [[1, 2, 3]]


def test_unknown_format_and_plain_folder(tmp_path):
    (tmp_path / "x.xlsx").write_text("a,b\n")
    with pytest.raises(UserError, match="unknown input format"):
        list(read_records(tmp_path / "x.xlsx"))
    with pytest.raises(UserError, match="save_to_disk"):
        list(read_records(tmp_path))


def test_the_papers_csv_format_is_read_with_its_fields(tmp_path):
    """The authors' forget sets: doc_id,corpus,text with quoted multi-line texts (CRLF kept)."""
    path = tmp_path / "lm_extraction_2_0.csv"
    path.write_bytes(b'doc_id,corpus,text\r\n1670,github,"line one\r\nline, two"\r\n7,pile-cc,"say ""hi"""\r\n')
    records = list(read_records(path, id_field="doc_id"))
    assert [r.id for r in records] == ["1670", "7"]
    assert [r.text for r in records] == ["line one\r\nline, two", 'say "hi"']
    assert records[0].fields["corpus"] == "github"
    assert [r.id for r in read_records(path)] == ["lm_extraction_2_0.csv:1", "lm_extraction_2_0.csv:2"]


def test_a_csv_without_the_text_field_names_it(tmp_path):
    path = tmp_path / "x.tsv"
    path.write_text("doc_id\tbody\n1\thello\n")
    with pytest.raises(UserError, match="needs a string field 'text'"):
        list(read_records(path))


def test_a_named_id_field_must_be_in_every_record(tmp_path):
    """Without the default `id` a record is FILE:ROW; a field the user named (a typo of
    doc_id here) missing from a record is an error naming the record, in every format."""
    jsonl = tmp_path / "set.jsonl"
    jsonl.write_text(json.dumps({"doc_id": 1, "text": "one"}) + "\n" + json.dumps({"text": "two"}) + "\n")
    assert [r.id for r in read_records(jsonl)] == ["set.jsonl:1", "set.jsonl:2"]
    with pytest.raises(UserError, match=r"set.jsonl:2: no id field 'doc_id'"):
        list(read_records(jsonl, id_field="doc_id"))
    csv_path = tmp_path / "set.csv"
    csv_path.write_text("doc_id,text\n1,one\n")
    with pytest.raises(UserError, match=r"set.csv row 1: no id field 'docid'"):
        list(read_records(csv_path, id_field="docid"))
