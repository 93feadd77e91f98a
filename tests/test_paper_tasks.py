"""The papers' utility files, read as their authors' code reads them (small fixtures in
the same formats as ../shared/paper-data/validation/)."""

from __future__ import annotations

import json

import pytest

from helpers import fails_cleanly, memscan
from memscan.errors import UserError
from memscan.eval.paper_tasks import dialogue_prompt, load_paper_task, normalize_reply
from memscan.eval.tasks import AnswerItem, ChoiceItem, CompletionItem, TextItem


@pytest.fixture
def files(tmp_path):
    (tmp_path / "pubmed_qa.csv").write_text(
        "pubid,question,context,long_answer,final_decision,abstract\n"
        '1,Does it work?,"{}",Yes.,yes,"It worked, twice."\n'
        "2,Is it safe?,{},Unclear.,maybe,Mixed results.\n"
        "3,Missing abstract?,{},No.,no,\n"
    )
    (tmp_path / "lambada.csv").write_text("id,token_length,text,task\n0,5,He opened the door slowly,lambada\n")
    (tmp_path / "dialogue.json").write_text(
        json.dumps({"text": {"0": ["hi , how are you", "i am fine . you ?", "great !"], "1": ["one", "two"]}})
    )
    (tmp_path / "pile.csv").write_text('doc_id,text,corpus\n7,"Some held-out\ntext.",pile-cc\n')
    return tmp_path


def test_pubmedqa_items_as_the_authors_build_them(files):
    task = load_paper_task(f"pubmedqa={files / 'pubmed_qa.csv'}")
    assert [i.id for i in task.items] == ["pubmedqa:1", "pubmedqa:2"]  # a row without its abstract is dropped
    first = task.items[0]
    assert isinstance(first, ChoiceItem)
    assert first.contexts == ("Context: It worked, twice.\nQuestion: Does it work?\nAnswer:",) * 3
    assert first.choices == (" yes", " maybe", " no") and first.answer == 0
    assert task.items[1].answer == 1


def test_lambada_dialogue_and_text_items(files):
    (item,) = load_paper_task(f"lambada={files / 'lambada.csv'}").items
    assert item == CompletionItem("lambada:0", "He opened the door", " slowly")
    items = load_paper_task(f"wizard_of_wikipedia={files / 'dialogue.json'}").items
    assert items[0] == AnswerItem(
        "wizard_of_wikipedia:0", "User 1: Hi, how are you.\nUser 2: I am fine. You?\nUser 1:", ("Great!",), 32
    )
    assert items[1].context == "User 1: One.\nUser 2:"
    (text,) = load_paper_task(f"pile={files / 'pile.csv'}").items
    assert text == TextItem("pile:1", "Some held-out\ntext.")


@pytest.mark.parametrize(
    "raw, normalised",
    [
        ("hi , how are you", "Hi, how are you."),
        ("i'm here . and i think so !", "I'm here. And I think so!"),
        ("What?  Really", "What? Really."),
        ("", ""),
    ],
)
def test_normalize_reply(raw, normalised):
    assert normalize_reply(raw) == normalised


def test_dialogue_prompt_names_the_next_speaker():
    assert dialogue_prompt(["a", "b", "c"]).endswith("User 2:")
    assert dialogue_prompt(["a", "b"]).endswith("User 1:")


def test_bad_paper_task_files(files):
    with pytest.raises(UserError, match="unknown paper task 'pubmed'"):
        load_paper_task(f"pubmed={files / 'pubmed_qa.csv'}")
    with pytest.raises(UserError, match="lacks question, abstract, final_decision"):
        load_paper_task(f"pubmedqa={files / 'lambada.csv'}")
    with pytest.raises(UserError, match="dialogue JSON"):
        load_paper_task(f"blended_skill_talk={files / 'pile.csv'}")
    with pytest.raises(UserError, match="no such file"):
        load_paper_task(f"lambada={files / 'nope.csv'}")


def test_eval_runs_the_papers_tasks_from_their_files(workspace, files, tmp_path):
    result = memscan(
        "eval",
        workspace / "tiny",
        "--tasks",
        f"pubmedqa={files / 'pubmed_qa.csv'},wizard_of_internet={files / 'dialogue.json'}",
        "-o",
        tmp_path / "u",
    )
    assert result.returncode == 0, result.stderr
    metrics = (tmp_path / "u" / "utility.csv").read_text()
    assert "pubmedqa,acc" in metrics and "wizard_of_internet,f1" in metrics
    fails_cleanly(
        memscan("eval", workspace / "tiny", "--tasks", "pubmedqa=nope.csv", "-o", tmp_path / "v"), "no such file"
    )
