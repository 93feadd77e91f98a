"""Plain reference loops for the scores that need a model (Jang et al.'s way: one
forward or one `generate` call per prefix, one sequence at a time)."""

from __future__ import annotations

import numpy as np
import torch

from reference import overlap


@torch.no_grad()
def next_token_loop(loaded, seq):
    """For t = 1..T-1: (argmax of p(. | x_<t+1) == x_t, gap between the two top logits)."""
    hits, gaps = [], []
    for t in range(1, len(seq)):
        ids = torch.as_tensor([loaded.context + [int(v) for v in seq[:t]]], device=loaded.device)
        logits = loaded.model(input_ids=ids).logits[0, -1].float()
        top = torch.topk(logits, 2).values
        hits.append(int(logits.argmax()) == int(seq[t]))
        gaps.append(float(top[0] - top[1]))
    return np.array(hits), np.array(gaps)


@torch.no_grad()
def generate_one(loaded, prompt, n_new):
    """One greedy `generate` call for one prompt, exactly n_new tokens."""
    from transformers import GenerationConfig

    row = loaded.context + (
        [int(v) for v in prompt] if len(prompt) else ([] if loaded.context else [loaded.start_token])
    )
    ids = torch.as_tensor([row], device=loaded.device)
    config = GenerationConfig(max_new_tokens=n_new, do_sample=False, eos_token_id=None, pad_token_id=0)
    out = loaded.model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), generation_config=config)
    return out[0, len(row) :].cpu().numpy()


def el_loop(loaded, seq, n):
    """EL_n as Jang et al.'s code computes it: one generation per prefix length p = 1..T-n
    (prompt x_1..x_p, continuation to length T), OVERLAP_n against x_p+1..x_T, over T - n."""
    T = len(seq)
    total = 0.0
    for p in range(1, T - n + 1):
        generated = generate_one(loaded, seq[:p], T - p)
        total += overlap(list(generated), list(seq[p:]), n)
    return total / (T - n)


def extraction_strength_loop(loaded, seq):
    """Shortest k whose teacher-forced argmax reproduces x_k+1..x_T, tried k = 1, 2, ..."""
    hits, _ = next_token_loop(loaded, seq)
    for k in range(1, len(seq) + 1):
        if all(hits[k - 1 :]):
            return 1 - k / len(seq)
    return 0.0


@torch.no_grad()
def dpd_loop(loaded, seq, lam=0.2, top_k=50):
    """For t = 1..T-1: the probability that one sampled `generate` step of the authors'
    DPD emits x_t."""
    return np.array([dpd_next(loaded, seq[:t], lam, top_k)[int(seq[t])] for t in range(1, len(seq))])


def dpd_next(loaded, prompt, lam=0.2, top_k=50):
    """The distribution one sampled `generate` step of the authors' DPD draws the next
    token from, read off the scores `generate` samples from (the logits mixed as
    lam * l + (1 - lam) * mean(l), then transformers' top-k warper)."""
    from transformers import GenerationConfig, LogitsProcessor, LogitsProcessorList

    class MixWithMean(LogitsProcessor):  # gpt_neo_dp.py's mixing, as a logits processor
        def __call__(self, input_ids, scores):
            return lam * scores + (1 - lam) * scores.mean(-1, keepdim=True)

    config = GenerationConfig(
        max_new_tokens=1, do_sample=True, top_k=top_k, temperature=1.0, top_p=1.0, eos_token_id=None, pad_token_id=0
    )
    ids = torch.as_tensor([loaded.context + [int(v) for v in prompt]], device=loaded.device)
    out = loaded.model.generate(
        input_ids=ids,
        attention_mask=torch.ones_like(ids),
        generation_config=config,
        logits_processor=LogitsProcessorList([MixWithMean()]),
        output_scores=True,
        return_dict_in_generate=True,
    )
    return torch.softmax(out.scores[0][0].float(), -1).cpu().numpy()
