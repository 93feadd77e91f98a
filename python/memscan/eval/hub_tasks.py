"""The papers' tasks that only the Hugging Face hub carries, read from it when it can be
reached (a clear one-line error at once when it cannot).

- MathQA (`allenai/math_qa`, test split), as lm-evaluation-harness's `mathqa` builds it
  (the papers ran the harness): "Question: {Problem}\\nAnswer:" with the five options
  parsed out of the `options` string ("a ) 38 , b ) 27.675 , ..."), answered by the
  largest total log-likelihood (`acc`) or per character (`acc_norm`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from memscan import hub
from memscan.errors import UserError, first_line
from memscan.eval.tasks import ChoiceItem, Item

MATHQA_DATASET = "allenai/math_qa"
_OPTION = re.compile(r"[abcd] \) .*?, |e \) .*?$")


def mathqa_items(rows: Iterable[dict]) -> list[Item]:
    """One ChoiceItem per MathQA row (fields Problem, options, correct)."""
    items: list[Item] = []
    for number, row in enumerate(rows):
        choices = tuple(" " + c[4:].rstrip(" ,") for c in _OPTION.findall(row["options"]))
        answer = "abcde".index(row["correct"])
        if len(choices) != 5:
            raise UserError(f"MathQA row {number}: options {row['options']!r} are not the five a ) .. e ) expected")
        context = f"Question: {row['Problem']}\nAnswer:"
        items.append(ChoiceItem(f"mathqa:{number}", (context,) * len(choices), choices, answer))
    return items


def mathqa() -> list[Item]:
    if not hub.reachable():
        raise UserError(
            f"task 'mathqa' is read from the hub ({MATHQA_DATASET}), which cannot be reached (offline); run it where "
            "the hub is reachable, or pass its rows as a JSONL task file"
        )
    from datasets import load_dataset

    try:
        split = load_dataset(MATHQA_DATASET, split="test")
    except Exception as e:  # datasets raises many kinds; each is the user's to see, in one line
        raise UserError(f"task 'mathqa': loading {MATHQA_DATASET} failed ({first_line(e)})") from None
    return mathqa_items(split)
