"""MIAU, the paper's membership inference against unlearning: a neighbourhood attack.

For each candidate x (the forget set and an equal-size sample of unseen sequences),
make neighbours by masking spans of x and filling them by sampling; a model that has
seen x scores it unusually far from its neighbours, in either direction: score(x) =
|LL(x) - mean LL(neighbours)|, LL the mean token log-likelihood (Mattern et al. 2023;
the authors' code, after DetectGPT). ROC AUC and PR AUC of forget vs unseen.

The masks follow the authors' rule (DetectGPT's): int(pct * W / (span + 2)) spans of
`span` units, placed at random with at least one free unit on either side, W the
number of units. The authors fill word spans with T5-large. No mask-filling model can
be installed offline, so memscan's neighbour generator works on tokens: each masked
span of 2 tokens is resampled, left to right, from a causal language model given the
neighbour's text before it (the full distribution, temperature 1), with the original
token at each position excluded. The exclusion matters when the resampling model is the
one that memorized x: unrestricted, it writes the memorized tokens back and x's
neighbours are x itself (measured on the test model: AUC 0.11 instead of above 0.9);
a T5 fill, like this one, almost never restores the original words. The causal model
is the one under attack as it was before unlearning, or any other (`--mask-model`).
Every report names the generator (`Neighbourhood.generator`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import torch

from memscan.model.forward import every_target, mean_logprob, pad_id, padded
from memscan.model.loading import LoadedModel
from memscan.model.ranks import ONE, Ranks

SPAN = 2  # units per masked span
BUFFER = 1  # free units kept on either side of a span
GENERATION_BATCH = 64  # copies resampled together (fixed: the samples depend on it)


@dataclass(frozen=True)
class MiauOptions:
    neighbours: int = 25  # per candidate (0: skip the attack)
    mask_pct: float = 0.3  # the authors' `pct`: the rule masks pct * span / (span + 2) of the units
    seed: int = 0
    batch_size: int = 8


def mask_spans(length: int, pct: float, rng: np.random.Generator, span: int = SPAN, buffer: int = BUFFER) -> list[int]:
    """Sorted starts of the masked spans of a sequence of `length` units (the authors' rule)."""
    span = max(1, min(int(pct * length), span))
    wanted = int(pct * length / (span + 2 * buffer))
    masked = np.zeros(length, dtype=bool)
    starts: list[int] = []
    for _ in range(100 * wanted):  # random placement can jam; give up rather than loop forever
        if len(starts) == wanted:
            break
        start = int(rng.integers(0, max(1, length - span)))
        if not masked[max(0, start - buffer) : min(length, start + span + buffer)].any():
            masked[start : start + span] = True
            starts.append(start)
    return sorted(starts)


def resampled_neighbours(
    sampler: LoadedModel,
    sequences: Sequence[np.ndarray],
    count: int,
    options: MiauOptions,
    progress=None,
    ranks: Ranks = ONE,
) -> list[list[np.ndarray]]:
    """`count` neighbours of every sequence: its masked token spans resampled left to right
    from `sampler`, one cached pass over each batch of copies (`progress(n)` after each).
    Each batch draws from its own seeded generator, so `ranks` can split the batches
    and the neighbours are the ones a single process makes."""
    rng = np.random.default_rng(options.seed)
    copies = [np.array(s, dtype=np.uint32) for s in sequences for _ in range(count)]
    masked = []
    for copy in copies:
        where = np.zeros(len(copy), dtype=bool)
        for start in mask_spans(len(copy), options.mask_pct, rng):
            where[start : start + SPAN] = True
        masked.append(where)

    def resample(batches: range) -> list[np.ndarray]:
        done: list[np.ndarray] = []
        for batch in batches:
            rows = slice(batch * GENERATION_BATCH, (batch + 1) * GENERATION_BATCH)
            _resample(sampler, copies[rows], masked[rows], batch_generator(options.seed, batch))
            done.extend(copies[rows])
            if progress:
                progress(len(copies[rows]))
        return done

    resampled = ranks.split_list(-(-len(copies) // GENERATION_BATCH), resample)
    return [resampled[i * count : (i + 1) * count] for i in range(len(sequences))]


def batch_generator(seed: int, batch: int) -> torch.Generator:
    """The sampling generator of one batch of copies, independent of the other batches."""
    return torch.Generator().manual_seed(int(np.random.SeedSequence([seed, batch]).generate_state(1, np.uint64)[0]))


@torch.no_grad()
def _resample(
    sampler: LoadedModel, copies: list[np.ndarray], masked: list[np.ndarray], generator: torch.Generator
) -> None:
    """Replace the masked tokens of every copy in place, left to right, each by a sample
    from `sampler` given the copy before it (earlier replacements included), never the
    token that was there. One token per step for the whole batch, with a KV cache."""
    from transformers import DynamicCache

    lead = sampler.context or [sampler.start_token]  # what predicts a copy's first token
    ids, mask = padded([lead + [int(t) for t in copy] for copy in copies], pad_id(sampler), sampler.device)
    is_masked = torch.zeros(ids.shape, dtype=torch.bool)
    for row, where in enumerate(masked):
        is_masked[row, len(lead) : len(lead) + len(where)] = torch.as_tensor(where)
    cache = DynamicCache(config=sampler.model.config)
    fed = len(lead) - 1  # the cache holds ids[:, :fed]; the next step feeds column fed
    if fed:
        with sampler.autocast():
            cache = sampler.model(
                input_ids=ids[:, :fed], attention_mask=mask[:, :fed], cache=cache, use_cache=True
            ).cache
    last = int(is_masked.nonzero()[:, 1].max()) if is_masked.any() else fed
    for column in range(fed, last):  # feeding `column` predicts `column + 1`
        rows = is_masked[:, column + 1].nonzero()[:, 0]
        with sampler.autocast():
            output = sampler.model(
                input_ids=ids[:, column : column + 1],
                attention_mask=mask[:, : column + 1],
                position_ids=torch.full((len(copies), 1), column, device=ids.device),
                cache=cache,
                use_cache=True,
                logits_to_keep=1,
            )
        cache = output.cache
        if not len(rows):
            continue
        logits = output.logits[rows.to(ids.device), -1].float()
        logits[torch.arange(len(rows)), ids[rows, column + 1]] = float("-inf")  # never the original token
        chosen = torch.multinomial(torch.softmax(logits, -1).cpu(), 1, generator=generator)[:, 0]
        ids[rows, column + 1] = chosen.to(ids.device)
    for row, copy in enumerate(copies):
        copy[:] = ids[row, len(lead) : len(lead) + len(copy)].cpu().numpy().astype(np.uint32)


def mean_log_likelihood(
    loaded: LoadedModel, sequences: Sequence[np.ndarray], batch_size: int, progress=None, ranks: Ranks = ONE
) -> np.ndarray:
    return np.array([mean_logprob(logp) for logp, _ in every_target(loaded, sequences, batch_size, progress, ranks)])


@dataclass
class Neighbourhood:
    """The attack's candidates and their neighbours, made once and scored under any model."""

    ids: list[str]
    member: np.ndarray  # True for the forget set
    candidates: list[np.ndarray]
    neighbours: list[list[np.ndarray]]  # per candidate
    generator: str  # what made the neighbours, for every report
    batch_size: int = 8

    @classmethod
    def build(
        cls,
        sampler: LoadedModel,
        forget: tuple[Sequence[str], Sequence[np.ndarray]],
        unseen: tuple[Sequence[str], Sequence[np.ndarray]],
        options: MiauOptions = MiauOptions(),
        progress=None,
        ranks: Ranks = ONE,
    ) -> Neighbourhood:
        """Candidates: the forget set and a seeded sample of as many unseen sequences (all of
        them when there are fewer). `progress` makes a bar: (name, total) -> update; `ranks`
        split the generation, and every rank returns the whole neighbourhood."""
        n = min(len(forget[1]), len(unseen[1]))
        picked = np.sort(np.random.default_rng(options.seed).permutation(len(unseen[1]))[:n])
        ids = [*forget[0], *(unseen[0][i] for i in picked)]
        candidates = [np.asarray(s, np.uint32) for s in forget[1]] + [
            np.asarray(unseen[1][i], np.uint32) for i in picked
        ]
        member = np.array([True] * len(forget[1]) + [False] * n)
        bar = progress("MIAU neighbours", len(candidates) * options.neighbours) if progress else None
        neighbours = resampled_neighbours(sampler, candidates, options.neighbours, options, bar, ranks)
        generator = (
            f"{options.neighbours} neighbours per candidate: masked {SPAN}-token spans (pct {options.mask_pct}) "
            f"resampled from {sampler.name}, never the original token"
        )
        return cls(list(ids), member, candidates, neighbours, generator, options.batch_size)

    def to_table(self) -> pa.Table:
        """The neighbourhood as a table (one row per candidate), to score later models with."""
        table = pa.table(
            {
                "id": pa.array(self.ids, pa.string()),
                "member": pa.array(self.member),
                "candidate": pa.array([c.tolist() for c in self.candidates], pa.list_(pa.uint32())),
                "neighbours": pa.array(
                    [[n.tolist() for n in ns] for ns in self.neighbours], pa.list_(pa.list_(pa.uint32()))
                ),
            }
        )
        return table.replace_schema_metadata({b"generator": self.generator.encode()})

    @classmethod
    def from_table(cls, table: pa.Table, batch_size: int = 8) -> Neighbourhood:
        def arrays(rows):
            return [np.asarray(r, np.uint32) for r in rows]

        return cls(
            table.column("id").to_pylist(),
            table.column("member").to_numpy(zero_copy_only=False),
            arrays(table.column("candidate").to_pylist()),
            [arrays(ns) for ns in table.column("neighbours").to_pylist()],
            (table.schema.metadata or {}).get(b"generator", b"").decode(),
            batch_size,
        )

    def scores(self, loaded: LoadedModel, progress=None, ranks: Ranks = ONE) -> np.ndarray:
        """|LL(x) - mean LL(neighbours of x)| of every candidate under `loaded`; `progress`
        makes a bar: (name, total) -> update; `ranks` split the sequences."""
        count = len(self.neighbours[0]) if self.neighbours else 0
        flat = [*self.candidates, *(n for ns in self.neighbours for n in ns)]
        bar = progress("MIAU", len(flat)) if progress else None
        ll = mean_log_likelihood(loaded, flat, self.batch_size, bar, ranks)
        own, around = ll[: len(self.candidates)], ll[len(self.candidates) :].reshape(len(self.candidates), count)
        return np.abs(own - around.mean(axis=1))
