"""Utility scoring: choices by total and normalised NLL against values computed by hand,
completions, greedy answers and F1, perplexity, intervals, and task files."""

import json
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from bigram import bigram_model
from memscan.errors import UserError
from memscan.eval import EvalOptions, evaluate_tasks
from memscan.eval.scorers import unigram_f1
from memscan.eval.statistics import subsample, wilson_interval
from memscan.eval.tasks import AnswerItem, ChoiceItem, CompletionItem, Task, TextItem, load_task, read_task_file

QUIET = EvalOptions(progress=False)
# p(w1|w0) = 0.5, p(w2|w1) = 0.02, p(w3|w0) = 0.04, p(w4|w1) = 0.6
MODEL = {("w0", "w1"): 0.5, ("w1", "w2"): 0.02, ("w0", "w3"): 0.04, ("w1", "w4"): 0.6}


@pytest.fixture(scope="module")
def bigram():
    return bigram_model(MODEL)


def metric(result, task, name):
    return next(r for r in result.metrics.to_pylist() if r["task"] == task and r["metric"] == name)


def test_a_choice_is_scored_by_its_total_nll_and_by_nll_per_character(bigram):
    # " w1 w2": -ln 0.5 - ln 0.02 = ln 100 = 4.605 in total, 0.768 per character (6);
    # " w3":    -ln 0.04 = ln 25 = 3.219 in total, 1.073 per character (3).
    item = ChoiceItem("q", ("w0", "w0"), (" w1 w2", " w3"), answer=0)
    result = evaluate_tasks(bigram, [Task("hand", [item])], QUIET)
    row = result.items["hand"].to_pylist()[0]
    assert row["answer_nll"] == pytest.approx(math.log(100), abs=1e-5)
    assert row["correct"] is False  # the total prefers " w3" (3.219 < 4.605)
    assert row["correct_norm"] is True  # per character prefers " w1 w2" (0.768 < 1.073)
    assert metric(result, "hand", "acc")["value"] == 0 and metric(result, "hand", "acc_norm")["value"] == 1


def test_each_choice_may_carry_its_own_context(bigram):
    # WinoGrande's shape: the contexts differ, the continuation is shared.
    item = ChoiceItem("q", ("w0", "w1"), (" w2", " w2"), answer=1)
    row = evaluate_tasks(bigram, [Task("wino", [item])], QUIET).items["wino"].to_pylist()[0]
    assert row["answer_nll"] == pytest.approx(math.log(50), abs=1e-5)  # -ln p(w2 | w1), not given w0


def test_completion_is_right_only_when_greedy_gives_every_target_token(bigram):
    items = [CompletionItem("a", "w0", " w1 w4"), CompletionItem("b", "w0", " w1 w2"), CompletionItem("c", "w0", " w3")]
    rows = evaluate_tasks(bigram, [Task("lambada", items)], QUIET).items["lambada"].to_pylist()
    assert [r["correct"] for r in rows] == [True, False, False]
    assert rows[0]["answer_nll"] == pytest.approx(-math.log(0.5) - math.log(0.6), abs=1e-5)


def test_answers_are_generated_greedily_and_scored_by_unigram_f1(bigram):
    items = [AnswerItem("a", "w0", ("w1 w4",)), AnswerItem("b", "w0", ("w9", "w1 w9"))]
    result = evaluate_tasks(bigram, [Task("qa", items)], EvalOptions(progress=False, max_answer_tokens=2))
    rows = result.items["qa"].to_pylist()
    assert [r["prediction"] for r in rows] == ["w1 w4", "w1 w4"]
    assert [r["f1"] for r in rows] == [1.0, 0.5]
    assert metric(result, "qa", "f1")["value"] == 0.75


def test_perplexity_is_exp_of_the_mean_token_nll(bigram):
    items = [TextItem("a", "w0 w1"), TextItem("b", "w0 w3")]
    result = evaluate_tasks(bigram, [Task("text", items)], QUIET)
    assert metric(result, "text", "perplexity")["value"] == pytest.approx(math.sqrt(2 * 25), rel=1e-5)


@given(
    st.lists(
        st.tuples(st.integers(0, 61), st.lists(st.integers(0, 61), min_size=1, max_size=4)), min_size=2, max_size=4
    ),
    st.integers(0, 3),
)
@pytest.mark.slow
def test_total_nll_equals_the_sum_of_log_softmax_terms(choices, seed):
    """Property: every choice's NLL equals a plain sum over the bigram table."""
    loaded = bigram_model(MODEL, seed)
    table = loaded.model.table.weight.detach().double().numpy()
    logp = table - np.log(np.exp(table).sum(1, keepdims=True))
    words = lambda ids: " ".join(f"w{i}" for i in ids)  # noqa: E731
    for answer, (first, rest) in enumerate(choices):
        item = ChoiceItem(
            "q", tuple(words([first]) for _ in choices), tuple(" " + words(r) for _, r in choices), answer
        )
        row = evaluate_tasks(loaded, [Task("p", [item])], QUIET).items["p"].to_pylist()[0]
        ids = [first + 2, *(i + 2 for i in rest)]
        expected = -sum(logp[a, b] for a, b in zip(ids, ids[1:]))
        assert row["answer_nll"] == pytest.approx(expected, rel=1e-4, abs=1e-4)


def test_unigram_f1_normalises_like_squad():
    assert unigram_f1("The cat sat.", "a cat sat down") == pytest.approx(0.8)
    assert unigram_f1("", "") == 1.0 and unigram_f1("cat", "") == 0.0 and unigram_f1("dog", "cat") == 0.0


def test_wilson_interval_matches_the_textbook_value():
    low, high = wilson_interval(8, 10)
    assert (round(low, 3), round(high, 3)) == (0.490, 0.943)


def test_subsamples_are_fixed_by_the_seed():
    items = list(range(100))
    assert subsample(items, 10, 3) == subsample(items, 10, 3) != subsample(items, 10, 4)
    assert subsample(items, 200, 3) == items


def test_builtin_tasks_read_offline():
    copa = load_task("copa")
    assert len(copa.items) == 100 and all(len(i.choices) == 2 and i.answer in (0, 1) for i in copa.items)
    assert copa.items[0].contexts[0].endswith(("because", "therefore"))
    arc = load_task("arc_easy")
    assert all(0 <= i.answer < len(i.choices) and len(i.contexts) == len(i.choices) for i in arc.items)
    lambada = load_task("lambada")
    assert len(lambada.items) == 5153 and lambada.items[0].target == " signs"
    coqa = load_task("coqa")
    assert coqa.items[0].answers


def test_unknown_and_unavailable_tasks_say_so():
    with pytest.raises(UserError, match="unknown task 'helaswag'"):
        load_task("helaswag")
    with pytest.raises(UserError, match="not built in: give its file"):
        load_task("pubmedqa")
    with pytest.raises(UserError, match=r"read from the hub \(allenai/math_qa\), which cannot be reached"):
        load_task("mathqa")  # the tests run with HF_HUB_OFFLINE


def test_mathqa_items_are_built_as_the_harness_builds_them():
    from memscan.eval.hub_tasks import mathqa_items

    row = {
        "Problem": "the banker ' s gain of a certain sum due 3 years hence at 10 % per annum is rs . 36 . what is the present worth ?",
        "options": "a ) rs . 400 , b ) rs . 300 , c ) rs . 500 , d ) rs . 350 , e ) none of these",
        "correct": "a",
    }
    (item,) = mathqa_items([row])
    assert item.choices == (" rs . 400", " rs . 300", " rs . 500", " rs . 350", " none of these")
    assert item.contexts == (f"Question: {row['Problem']}\nAnswer:",) * 5 and item.answer == 0
    with pytest.raises(UserError, match="not the five"):
        mathqa_items([{**row, "options": "a ) 1 , b ) 2"}])


def write(path, lines):
    path.write_text("".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines))
    return path


def test_task_files_take_every_shape(tmp_path):
    shapes = {
        "mc": [{"context": "w0", "choices": [" w1", " w3"], "answer": 0, "id": "x"}],
        "cloze": [{"context": "w0", "target": " w1"}],
        "qa": [{"context": "w0", "answers": ["w1"]}],
        "text": [{"text": "w0 w1"}],
    }
    kinds = {
        name: type(read_task_file(write(tmp_path / f"{name}.jsonl", rows)).items[0]) for name, rows in shapes.items()
    }
    assert kinds == {"mc": ChoiceItem, "cloze": CompletionItem, "qa": AnswerItem, "text": TextItem}
    assert read_task_file(tmp_path / "mc.jsonl").items[0].id == "x"


@pytest.mark.parametrize(
    "lines, message",
    [
        (['{"context": "a", "target": " b"}', "{not json"], "bad.jsonl:2: malformed JSON"),
        (['{"context": "a", "choices": [" b", " c"], "answer": 2}'], "bad.jsonl:1: 'answer' must be the index"),
        (
            ['{"context": "a", "target": " b"}', '{"text": "a b"}'],
            "bad.jsonl:2: a text item in a file of completion items",
        ),
        (['{"prompt": "a"}'], "bad.jsonl:1: keys ['prompt'] match no item shape"),
        (['{"context": "a", "answers": []}'], "bad.jsonl:1: 'answers' must be a non-empty list"),
        ([""], "bad.jsonl: no items"),
    ],
)
def test_malformed_task_files_name_the_line(tmp_path, lines, message):
    with pytest.raises(UserError, match=message.replace("[", r"\[").replace("]", r"\]")):
        read_task_file(write(tmp_path / "bad.jsonl", lines))


def test_choices_sharing_a_long_context_score_as_each_choice_alone(memorized):
    """The choice scorer computes a long shared context once (shared_prefix); every
    choice's total NLL equals scoring its whole sequence alone."""
    from memscan.eval.scorers import encode_pairs
    from memscan.model.forward import target_scores

    model = memorized[0]
    context = " ".join(f"w{i % 50 + 3}" for i in range(30))
    choices = (" w1 w2", " w3", " w4 w5 w6")
    items = [ChoiceItem(f"q{answer}", (context,) * 3, choices, answer) for answer in range(3)]
    rows = evaluate_tasks(model, [Task("shared", items)], QUIET).items["shared"].to_pylist()
    alone = target_scores(model, *zip(*encode_pairs(model, [(context, c) for c in choices])))
    assert [r["answer_nll"] for r in rows] == pytest.approx([-logp.sum() for logp, _ in alone], abs=1e-4)
