"""A bigram "language model" with probabilities set by hand, so that log-likelihoods can
be computed on paper: p(next | previous) is a row of `probs`."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import torch

from tiny_model import VOCAB, loaded, tiny_tokenizer


def token(word: str) -> int:
    return tiny_tokenizer().convert_tokens_to_ids(word)


class BigramLM(torch.nn.Module):
    def __init__(self, probs: np.ndarray):
        super().__init__()
        self.table = torch.nn.Embedding(VOCAB, VOCAB)
        with torch.no_grad():
            self.table.weight.copy_(torch.as_tensor(np.log(probs), dtype=torch.float32))
        self.config = SimpleNamespace(max_position_embeddings=64)

    def get_input_embeddings(self):
        return self.table

    def forward(self, input_ids, attention_mask=None, **_):
        # a bigram needs no cache: generation gets one that holds nothing
        return SimpleNamespace(logits=self.table(input_ids), cache=_NoCache())


class _NoCache:
    def get_seq_length(self) -> int:
        return 0

    def batch_select_indices(self, keep) -> None:
        pass


def bigram_model(chosen: dict[tuple[str, str], float], seed: int = 0):
    """Rows spread what `chosen` leaves over the other tokens, in random proportions well
    below every chosen probability (so argmax follows `chosen`)."""
    rng = np.random.default_rng(seed)
    probs = rng.uniform(1.0, 2.0, size=(VOCAB, VOCAB))
    for prev in range(VOCAB):
        set_here = {token(b): p for (a, b), p in chosen.items() if token(a) == prev}
        rest = [i for i in range(VOCAB) if i not in set_here]
        probs[prev, rest] *= (1.0 - sum(set_here.values())) / probs[prev, rest].sum()
        for i, p in set_here.items():
            probs[prev, i] = p
    return loaded(BigramLM(probs))
