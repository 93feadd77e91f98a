"""The papers' utility data in their authors' file formats (`../shared/paper-data/README.md`
describes them; users pass the files' paths): items built exactly as the authors' code
builds them (GeorgeOctavian/selective_unlearning, `llmu/utils/dataset_utils.py`).

- PubMedQA (`pubmed_qa.csv`): "Context: {abstract}\\nQuestion: {question}\\nAnswer:" with
  the choices " yes", " maybe", " no", answered by the lowest total NLL (`acc`).
- LAMBADA (`lambada.csv`): the text up to its last space, and " " + its last word.
- Dialogue sets (`wizard_of_wikipedia.json`, ...: pandas JSON, one list of turns per
  row): every turn but the last, normalised and labelled "User 1:" / "User 2:", then
  the next speaker's label; the reference is the last turn, normalised; the model
  replies greedily with up to 32 tokens, scored by unigram F1.
- Held-out text (`pile.csv`, `wikitext.csv`, `valid_dm_mathematics.csv`): perplexity.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

from memscan.errors import UserError
from memscan.eval.tasks import AnswerItem, ChoiceItem, CompletionItem, Item, Task, TextItem
from memscan.scan.readers import csv_rows

DIALOGUE_REPLY_TOKENS = 32  # the authors' generation length for the dialogue sets
DIALOGUE_SETS = ("wizard_of_wikipedia", "empathetic_dialogues", "blended_skill_talk", "wizard_of_internet")
PUBMEDQA_CHOICES = ("yes", "maybe", "no")


def _rows(path: Path, needed: tuple[str, ...]) -> Iterator[tuple[int, dict]]:
    """The file's rows that have every `needed` column filled (the authors drop the others)."""
    if not path.is_file():
        raise UserError(f"{path}: no such file")
    for number, row in csv_rows(path):
        if number == 1 and (missing := [c for c in needed if c not in row]):
            raise UserError(
                f"{path}: the authors' format has the columns {', '.join(needed)}; this file lacks {', '.join(missing)}"
            )
        if all(row.get(c) for c in needed):
            yield number, row


def pubmedqa(path: Path) -> list[Item]:
    items: list[Item] = []
    for number, row in _rows(path, ("question", "abstract", "final_decision")):
        if row["final_decision"] not in PUBMEDQA_CHOICES:
            raise UserError(f"{path} row {number}: final_decision must be yes, maybe or no")
        context = f"Context: {row['abstract']}\nQuestion: {row['question']}\nAnswer:"
        items.append(
            ChoiceItem(
                f"pubmedqa:{row.get('pubid') or number}",
                (context,) * 3,
                tuple(" " + c for c in PUBMEDQA_CHOICES),
                PUBMEDQA_CHOICES.index(row["final_decision"]),
            )
        )
    return items


def lambada(path: Path) -> list[Item]:
    items: list[Item] = []
    for number, row in _rows(path, ("text",)):
        words = row["text"].split(" ")
        if len(words) < 2:
            continue
        items.append(CompletionItem(f"lambada:{row.get('id') or number}", " ".join(words[:-1]), " " + words[-1]))
    return items


def held_out_text(name: str) -> Callable[[Path], list[Item]]:
    def read(path: Path) -> list[Item]:
        return [
            TextItem(f"{name}:{number}", row["text"]) for number, row in _rows(path, ("text",)) if row["text"].strip()
        ]

    return read


def dialogue(name: str) -> Callable[[Path], list[Item]]:
    def read(path: Path) -> list[Item]:
        if not path.is_file():
            raise UserError(f"{path}: no such file")
        try:
            turns_by_row = json.loads(path.read_text(encoding="utf-8"))["text"]
        except (ValueError, KeyError, TypeError):
            raise UserError(f'{path}: not the authors\' dialogue JSON ({{"text": {{row: [turn, ...]}}}})') from None
        items: list[Item] = []
        for row, turns in turns_by_row.items():
            if not isinstance(turns, list) or len(turns) < 2 or not all(isinstance(t, str) for t in turns):
                raise UserError(f"{path}: row {row} must be a list of at least two turns")
            items.append(
                AnswerItem(
                    f"{name}:{row}",
                    dialogue_prompt(turns[:-1]),
                    (normalize_reply(turns[-1]),),
                    max_new_tokens=DIALOGUE_REPLY_TOKENS,
                )
            )
        return items

    return read


def dialogue_prompt(turns: list[str]) -> str:
    """Each turn normalised on its own line as "User 1: ..." / "User 2: ...", then the next speaker's label."""
    lines = [f"User {1 + i % 2}: {normalize_reply(turn)}\n" for i, turn in enumerate(turns)]
    return "".join(lines) + f"User {1 + len(turns) % 2}:"


def normalize_reply(text: str) -> str:
    """The dialogue turns' normalisation in the authors' code (from ParlAI): lower case, then
    capitals at sentence starts and for "I", punctuation pulled to the word before it, a
    full stop added where the turn ends without one."""
    pairs = [(" .", "."), (" ,", ","), (" ?", "?"), (" !", "!"), (" ' ", "'")]
    spaced = text.lower()
    for with_space, without in pairs:
        spaced = spaced.replace(without, with_space).replace("  ", " ")
    words = spaced.split(" ")
    for i, word in enumerate(words):
        if i == 0 or word in ("i", "i'm", "i've", "i'll", "i'd"):
            words[i] = _capitalised(word)
        elif word in "?.!" and i < len(words) - 1:
            words[i + 1] = _capitalised(words[i + 1])
    joined = " " + " ".join(words) + " "
    for with_space, without in pairs:
        joined = joined.replace(with_space, without)
    joined = joined.strip().replace("  ", " ")
    if joined and joined[-1] not in "!.?)\"'":
        joined += "."
    return joined


def _capitalised(word: str) -> str:
    return word[:1].upper() + word[1:]


READERS: dict[str, Callable[[Path], list[Item]]] = {
    "pubmedqa": pubmedqa,
    "lambada": lambada,
    **{name: dialogue(name) for name in DIALOGUE_SETS},
    **{name: held_out_text(name) for name in ("pile", "wikitext", "dm_mathematics")},
}


def load_paper_task(spec: str) -> Task:
    """`NAME=PATH`: one of the papers' data files, read as its authors' code reads it."""
    name, _, path = spec.partition("=")
    if name not in READERS:
        raise UserError(f"unknown paper task {name!r} in {spec!r} (known: {', '.join(READERS)})")
    items = READERS[name](Path(path))
    if not items:
        raise UserError(f"{path}: no items")
    return Task(name, items)
