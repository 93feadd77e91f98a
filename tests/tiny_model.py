"""A tiny randomly initialised causal LM built in code, with a word-level tokenizer,
that memorizes a handful of sequences in seconds on a CPU."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from memscan.model.loading import LoadedModel

VOCAB = 64
SPECIALS = ["<eos>", "<pad>"]


def tiny_tokenizer():
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {w: i for i, w in enumerate(SPECIALS + [f"w{i}" for i in range(VOCAB - len(SPECIALS))])}
    core = Tokenizer(models.WordLevel(vocab, unk_token="<eos>"))
    core.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(tokenizer_object=core, eos_token="<eos>", pad_token="<pad>")


def tiny_model(seed: int = 0):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=VOCAB,
        hidden_size=48,
        intermediate_size=96,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        tie_word_embeddings=True,
        eos_token_id=0,
        pad_token_id=1,
        bos_token_id=None,
    )
    return LlamaForCausalLM(config).eval()


def random_sequences(count: int, length: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(len(SPECIALS), VOCAB, size=length).astype(np.uint32) for _ in range(count)]


def as_text(seq) -> str:
    return " ".join(f"w{int(t) - len(SPECIALS)}" for t in seq)


def memorize(model, sequences, steps: int = 150, lr: float = 3e-3, weights=None) -> None:
    """Fine-tune on `sequences` (repeated by `weights`) until the model recites them."""
    batch = torch.as_tensor(np.stack(sequences).astype(np.int64))
    weights = torch.ones(len(sequences)) if weights is None else torch.as_tensor(weights, dtype=torch.float32)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    for _ in range(steps):
        logits = model(input_ids=batch).logits[:, :-1]
        per_token = torch.nn.functional.cross_entropy(logits.transpose(1, 2), batch[:, 1:], reduction="none")
        loss = (per_token.mean(1) * weights).sum() / weights.sum()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()


def loaded(model, tokenizer=None, source: Path | None = None) -> LoadedModel:
    return LoadedModel("tiny", model, tokenizer or tiny_tokenizer(), source)
