"""Scoring a model on each shape of task item.

- Multiple choice: every choice is scored by the total log-likelihood of its tokens
  given its context; `acc` picks the largest total, `acc_norm` the largest total per
  character of the choice (lm-evaluation-harness's length normalisation).
- Completion (LAMBADA): right when greedy decoding gives every token of the target,
  i.e. teacher-forced argmax hits every target token.
- Answers (CoQA): unigram F1 (SQuAD normalisation) of a short greedy answer, cut at the
  first line break, against the best-matching reference. With `decoding="dpd"` the
  answer is sampled as the papers' differentially private decoding samples it (the
  authors score their DPD baseline's dialogue replies so; likelihood-scored tasks are
  unchanged by a decoder).
- Text: perplexity, exp of the mean negative log-likelihood per scored token.

Each scorer returns (one row per item, metric rows with their 95% intervals).
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from memscan.errors import UserError
from memscan.eval.statistics import bootstrap_interval, wilson_interval
from memscan.eval.tasks import DECODINGS, AnswerItem, ChoiceItem, CompletionItem, TextItem
from memscan.model.forward import DPD_LAMBDA, DPD_TOP_K, perplexity_of, target_scores, token_nll
from memscan.model.generation import greedy, sampled
from memscan.model.loading import LoadedModel
from memscan.model.shared_prefix import grouped_target_scores

PRIMARY_METRIC = {ChoiceItem: "acc", CompletionItem: "acc", AnswerItem: "f1", TextItem: "perplexity"}


@dataclass(frozen=True)
class EvalOptions:
    limit: int | None = None  # items per task, drawn with `seed`; None = all
    seed: int = 0
    batch_size: int = 8
    generation_batch_size: int = 32
    max_answer_tokens: int = 24
    progress: bool = True
    decoding: str = "greedy"  # of answers; "dpd": sampled under private decoding, seeded with `seed`

    def __post_init__(self):
        if self.decoding not in DECODINGS:
            raise UserError(f"decoding must be one of {', '.join(DECODINGS)}, not {self.decoding!r}")


def normalize_answer(text: str) -> str:
    """SQuAD's normalisation: lower case, no punctuation, no articles, single spaces."""
    text = "".join(c for c in text.lower() if c not in set(string.punctuation))
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def unigram_f1(prediction: str, reference: str) -> float:
    predicted, wanted = normalize_answer(prediction).split(), normalize_answer(reference).split()
    if not predicted or not wanted:
        return float(predicted == wanted)
    common = sum((Counter(predicted) & Counter(wanted)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(predicted), common / len(wanted)
    return 2 * precision * recall / (precision + recall)


def _max_length(loaded: LoadedModel) -> int:
    return int(getattr(loaded.model.config, "max_position_embeddings", 2048)) - len(loaded.context)


def encode_pairs(loaded: LoadedModel, pairs: Sequence[tuple[str, str]]) -> list[tuple[list[int], int]]:
    """(context + continuation tokens, number of continuation tokens) per pair.

    As lm-evaluation-harness does: spaces that end the context move to the continuation,
    the pair is tokenized whole and the continuation is what follows the context's own
    tokens (falling back to tokenizing it alone where the two disagree). An empty
    context becomes the start token; long contexts lose tokens on the left."""
    moved = []
    for context, continuation in pairs:
        spaces = len(context) - len(context.rstrip(" "))
        moved.append((context[: len(context) - spaces], context[len(context) - spaces :] + continuation))
    contexts = loaded.encode([c for c, _ in moved])
    wholes = loaded.encode([c + x for c, x in moved])
    alone = loaded.encode([x for _, x in moved])
    limit = _max_length(loaded)
    encoded = []
    for context_ids, whole, continuation_alone in zip(contexts, wholes, alone):
        continuation_ids = continuation_alone
        if context_ids and whole[: len(context_ids)] == context_ids and len(whole) > len(context_ids):
            continuation_ids = whole[len(context_ids) :]
        context_ids = context_ids or [loaded.start_token]
        encoded.append(((context_ids + continuation_ids)[-limit:], len(continuation_ids)))
    return encoded


def _continuation_stats(loaded, pairs, options: EvalOptions, bar):
    encoded = encode_pairs(loaded, pairs)
    sequences, lengths = [ids for ids, _ in encoded], [m for _, m in encoded]
    return target_scores(loaded, sequences, lengths, options.batch_size, progress=bar.update)


def _score_choices(loaded, items: list[ChoiceItem], options: EvalOptions, bar) -> tuple[list[dict], list[dict]]:
    pairs = [(ctx, choice) for item in items for ctx, choice in zip(item.contexts, item.choices)]
    encoded = iter(encode_pairs(loaded, pairs))
    groups = [[next(encoded) for _ in item.choices] for item in items]
    scored = grouped_target_scores(
        loaded,
        [[ids for ids, _ in g] for g in groups],
        [[n for _, n in g] for g in groups],
        options.batch_size,
        bar.update,
    )  # an item's choices share its context: it is computed once
    rows: list[dict[str, Any]] = []
    for item, choice_scores in zip(items, scored):
        totals = np.array([logprobs.sum() for logprobs, _ in choice_scores])
        per_char = totals / np.array([max(len(c), 1) for c in item.choices])
        rows.append(
            {
                "id": item.id,
                "correct": bool(np.argmax(totals) == item.answer),
                "correct_norm": bool(np.argmax(per_char) == item.answer),
                "answer_nll": float(-totals[item.answer]),
            }
        )
    return rows, [
        _accuracy("acc", [r["correct"] for r in rows]),
        _accuracy("acc_norm", [r["correct_norm"] for r in rows]),
    ]


def _score_completions(loaded, items: list[CompletionItem], options: EvalOptions, bar):
    scored = _continuation_stats(loaded, [(i.context, i.target) for i in items], options, bar)
    rows: list[dict[str, Any]] = [
        {"id": item.id, "correct": bool(hits.all()), "answer_nll": float(-logprobs.sum())}
        for item, (logprobs, hits) in zip(items, scored)
    ]
    return rows, [_accuracy("acc", [r["correct"] for r in rows])]


def _score_answers(loaded, items: list[AnswerItem], options: EvalOptions, bar):
    lengths = [item.max_new_tokens or options.max_answer_tokens for item in items]
    encoded = loaded.encode([i.context.rstrip(" ") for i in items])
    prompts = [ids[-(_max_length(loaded) - n) :] or [loaded.start_token] for ids, n in zip(encoded, lengths)]
    if options.decoding == "dpd":
        temperature, batch = 1 / DPD_LAMBDA, options.generation_batch_size
        generated = sampled(loaded, prompts, lengths, temperature, options.seed, batch, bar.update, DPD_TOP_K)
    else:
        generated = greedy(loaded, prompts, lengths, options.generation_batch_size, progress=bar.update)
    answers = [
        loaded.tokenizer.decode(g.tolist(), skip_special_tokens=True).strip().split("\n")[0].strip() for g in generated
    ]
    rows: list[dict[str, Any]] = [
        {"id": item.id, "prediction": a, "f1": max(unigram_f1(a, ref) for ref in item.answers)}
        for item, a in zip(items, answers)
    ]
    f1 = np.array([r["f1"] for r in rows])
    return rows, [_metric("f1", float(f1.mean()), bootstrap_interval(np.mean, [f1], options.seed), len(rows))]


def _score_texts(loaded, items: list[TextItem], options: EvalOptions, bar):
    window = _max_length(loaded)
    pieces, owners = [], []
    for n, ids in enumerate(loaded.encode([i.text for i in items])):
        for start in range(0, len(ids), window):
            if len(ids[start : start + window]) >= 2:
                pieces.append(ids[start : start + window])
                owners.append(n)
    bar.reset(total=len(pieces))  # long texts are scored in several windows
    piece_nll, piece_count = token_nll(loaded, pieces, options.batch_size, progress=bar.update)
    nll, count = np.zeros(len(items)), np.zeros(len(items))
    np.add.at(nll, owners, piece_nll)
    np.add.at(count, owners, piece_count)
    rows = [{"id": item.id, "nll": float(nll[n]), "tokens": int(count[n])} for n, item in enumerate(items)]
    interval = bootstrap_interval(perplexity_of, [nll, count], options.seed)
    return rows, [_metric("perplexity", perplexity_of(nll, count), interval, len(rows))]


def _accuracy(name: str, correct: list[bool]) -> dict:
    k, n = int(sum(correct)), len(correct)
    return _metric(name, k / n if n else float("nan"), wilson_interval(k, n), n)


def _metric(name: str, value: float, interval: tuple[float, float], n: int) -> dict:
    return {"metric": name, "value": value, "ci_low": interval[0], "ci_high": interval[1], "items": n}


SCORERS: dict[type, Callable[..., tuple[list[dict], list[dict]]]] = {
    ChoiceItem: _score_choices,
    CompletionItem: _score_completions,
    AnswerItem: _score_answers,
    TextItem: _score_texts,
}


def decodes(task_items: list) -> bool:
    """Whether a task's score depends on how the model decodes (answers are generated)."""
    return bool(task_items) and isinstance(task_items[0], AnswerItem)


def work(items: list) -> int:
    """Rows the progress bar counts: one per choice, per item otherwise."""
    return sum(len(i.choices) if isinstance(i, ChoiceItem) else 1 for i in items)
