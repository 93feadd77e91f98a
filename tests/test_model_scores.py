"""Batched model-side scores against the one-prefix-at-a-time reference loops."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from memscan.model import slots
from memscan.model.forward import DPD_LAMBDA, DPD_TOP_K, target_scores, teacher_forced
from memscan.model.generation import (
    continuations_of_prefixes,
    greedy,
    sampled,
    sampled_continuations_of_prefixes,
    sequence_caches,
)
from memscan.model.memorization import MemorizationOptions, memorization_table
from memscan.model.shared_prefix import _caches_exact, grouped_target_scores
from reference import extraction_likelihood
from reference_model import dpd_loop, dpd_next, el_loop, extraction_strength_loop, generate_one, next_token_loop
from tiny_model import loaded, random_sequences

NEAR_TIE = 1e-4


def assert_equal_or_near_tie(fast_hits, loop_hits, gaps, flips):
    for i in np.flatnonzero(fast_hits != loop_hits):
        assert gaps[i] < NEAR_TIE, f"argmax differs at position {i} with a logit gap of {gaps[i]}"
        flips.append(i)


def test_memorization_accuracy_equals_the_per_prefix_loop(memorized):
    model, sequences = memorized
    cut = [s[: 8 + 2 * (i % 9)] for i, s in enumerate(sequences)]  # lengths 8..24 in one padded batch
    fast = teacher_forced(model, cut, batch_size=7)
    flips, positions = [], 0
    for seq, stats in zip(cut, fast):
        hits, gaps = next_token_loop(model, seq)
        assert_equal_or_near_tie(stats.hits, hits, gaps, flips)
        positions += len(hits)
    assert len(flips) <= 0.01 * positions
    assert [s.memorization_accuracy for s in fast[:6]] != [0.0] * 6  # the memorized ones score


@settings(max_examples=15, deadline=None)
@given(st.lists(st.integers(0, 30), min_size=12, max_size=12), st.integers(1, 5))
def test_target_scores_equal_the_teacher_forced_pass_on_the_last_tokens(memorized, last, batch_size):
    """Logits computed only where a batch needs them: the same log-probabilities and hits."""
    model, sequences = memorized
    cut = [s[: 6 + 3 * (i % 6)] for i, s in enumerate(sequences[:12])]  # lengths 6..21
    full = teacher_forced(model, cut, batch_size=batch_size)
    scored = target_scores(model, cut, last, batch_size=batch_size)
    for stats, (logprobs, hits), m in zip(full, scored, last):
        m = min(m, len(stats.logprobs))
        np.testing.assert_allclose(logprobs, stats.logprobs[len(stats.logprobs) - m :], rtol=0, atol=1e-5)
        assert (hits == stats.hits[len(stats.hits) - m :]).all()
    everything = target_scores(model, cut, None, batch_size=batch_size)
    for stats, (logprobs, _) in zip(full, everything):
        np.testing.assert_allclose(logprobs, stats.logprobs, rtol=0, atol=1e-5)


@pytest.mark.parametrize("batch_size", [1, 3, 8])
def test_the_attacks_light_pass_gives_the_teacher_forced_loss_and_ma(memorized, batch_size):
    """MIAU's neighbours and the swapped copies are scored without Min-K%++ and DPD: the
    same loss and MA as the full pass (on SmolLM2 and Gemma-3 bit for bit, measured)."""
    from memscan.model.forward import every_target, mean_logprob

    model, sequences = memorized
    cut = [s[: 2 + 5 * (i % 5)] for i, s in enumerate(sequences[:15])]  # lengths 2..22
    full = teacher_forced(model, cut, batch_size=batch_size)
    light = every_target(model, cut, batch_size=batch_size)
    np.testing.assert_allclose([mean_logprob(lp) for lp, _ in light], [-s.loss for s in full], rtol=0, atol=1e-6)
    assert [h.mean() for _, h in light] == [s.memorization_accuracy for s in full]


def test_dpd_probabilities_equal_one_sampled_generate_step_per_prefix(memorized):
    """The papers' DPD: what `generate` samples from, with the authors' logit mixing as a
    processor and transformers' top-k, gives every target the probability memscan reads
    off one teacher-forced pass; its mean is the ma_dpd column."""
    model, sequences = memorized
    cut = [s[:12] for s in sequences[:4]] + [sequences[6][:12]]
    stats = teacher_forced(model, cut, batch_size=3)
    for seq, row in zip(cut, stats):
        np.testing.assert_allclose(row.dpd, dpd_loop(model, seq), rtol=1e-4, atol=1e-6)
    table = memorization_table(model, [str(i) for i in range(len(cut))], cut, MemorizationOptions(n=0, k=0))
    assert table.column("ma_dpd").to_pylist() == pytest.approx([r.dpd.mean() for r in stats])
    # Sampling at temperature 5 over 50 tokens rarely reproduces even a recited sequence.
    assert all(r.dpd_memorization_accuracy < r.memorization_accuracy for r in stats[:4])


@pytest.mark.slow
def test_dpd_sampling_draws_from_the_authors_sampler(memorized):
    """`sampled` at temperature 1 / lambda over the top 50 (the dialogue replies of a DPD
    cell) draws each token as often as the authors' `generate` DPD step would emit it."""
    model, sequences = memorized
    prompt, draws = sequences[5][:6], 20_000
    want = dpd_next(model, prompt)
    got = sampled(model, [prompt] * draws, [1] * draws, 1 / DPD_LAMBDA, 0, 4096, top_k=DPD_TOP_K)
    share = np.bincount([int(g[0]) for g in got], minlength=want.size) / draws
    assert np.all(share[want == 0] == 0)  # outside the top 50: never drawn
    assert np.all(np.abs(share - want) <= 5 * np.sqrt(want * (1 - want) / draws) + 1e-9)
    top = sampled(model, [prompt] * 4, [5] * 4, 1 / DPD_LAMBDA, 0, top_k=1)
    assert all(t.tolist() == generate_one(model, prompt, 5).tolist() for t in top)  # top-1 sampling is greedy


def test_dpd_el_is_el_of_one_seeded_dpd_draw_per_prefix(memorized):
    """el_{n}_dpd (the authors' NeoDP EL): the overlap of one DPD-sampled continuation per
    prefix p = 1..T-n, averaged over T - n; the same seed draws the same continuations."""
    model, sequences = memorized
    cut = [sequences[i][:14] for i in (0, 4, 5, 12)]
    n, prefixes = 3, [list(range(1, 14 - 3 + 1))] * 4
    draws = sampled_continuations_of_prefixes(model, cut, prefixes, seed=5, batch_size=7)
    again = sampled_continuations_of_prefixes(model, cut, prefixes, seed=5, batch_size=7)
    assert all(a.tolist() == b.tolist() for a, b in zip(draws.continuations, again.continuations))
    assert [len(c) for c in draws.continuations] == [14 - p for p in draws.prefix]
    options = MemorizationOptions(n=n, k=0, generation_batch_size=7, dpd_seed=5, dpd_el=True)
    table = memorization_table(model, [str(i) for i in range(4)], cut, options)
    by_prefix = [{} for _ in cut]
    for i, p, tokens in zip(draws.owner, draws.prefix, draws.continuations):
        by_prefix[i][int(p)] = list(tokens)
    want = [extraction_likelihood(list(seq), found, n) for seq, found in zip(cut, by_prefix)]
    assert table.column("el_3_dpd").to_pylist() == pytest.approx(want)
    greedy_el = table.column("el_3").to_numpy()
    assert np.all(table.column("el_3_dpd").to_numpy()[1:3] < greedy_el[1:3])  # recited greedily, not at T = 5


def test_dpd_el_at_top_1_is_the_greedy_el_loop(memorized, monkeypatch):
    """With the sampler cut to its top token, the DPD draws are greedy: el_{n}_dpd is then
    Jang et al.'s EL_n (one `generate` per prefix), through the same caches and slots."""
    from memscan.model import generation

    model, sequences = memorized
    monkeypatch.setattr(generation, "DPD_TOP_K", 1)
    cut = [sequences[i][:16] for i in (1, 5, 9)]
    table = memorization_table(model, ["a", "b", "c"], cut, MemorizationOptions(n=4, k=0, dpd_seed=0, dpd_el=True))
    assert table.column("el_4_dpd").to_pylist() == pytest.approx([el_loop(model, seq, 4) for seq in cut])


def test_dpd_extraction_scores_one_seeded_draw_of_the_k_prompt(memorized):
    """With a dpd_seed the k-prompt continuation is drawn as DPD samples, one per sequence,
    and scored as the greedy one: extractable_{k}_dpd is its exact match of the suffix."""
    model, sequences = memorized
    cut, k = [sequences[i][:16] for i in range(8)], 4
    table = memorization_table(model, list("abcdefgh"), cut, MemorizationOptions(n=0, k=k, dpd_seed=3))
    draws = sampled_continuations_of_prefixes(model, cut, [[k]] * 8, seed=3, batch_size=128)
    assert table.column(f"extractable_{k}_dpd").to_pylist() == [
        d.tolist() == s[k:].tolist() for d, s in zip(draws.continuations, cut)
    ]
    share = [float(np.mean(d == s[k:])) for d, s in zip(draws.continuations, cut)]
    assert table.column("match_share_dpd").to_pylist() == pytest.approx(share)
    greedy = table.column(f"extractable_{k}").to_pylist()
    assert sum(greedy) > sum(table.column(f"extractable_{k}_dpd").to_pylist())  # recited greedily, not at T = 5
    assert "el_0_dpd" not in table.column_names and "ma_dpd" in table.column_names


def test_dpd_extraction_at_top_1_is_the_greedy_extraction(memorized, monkeypatch):
    """Cut to its top token the sampler is greedy: every _dpd extraction column equals the
    greedy one, and drawing EL's prefixes too leaves them so."""
    from memscan.model import generation

    model, sequences = memorized
    monkeypatch.setattr(generation, "DPD_TOP_K", 1)
    cut = [sequences[i][:18] for i in (0, 2, 4, 7, 11)]
    for options in (MemorizationOptions(n=0, k=5, dpd_seed=1), MemorizationOptions(n=3, k=5, dpd_seed=1, dpd_el=True)):
        table = memorization_table(model, list("abcde"), cut, options)
        for column in ("extractable_5", "match_share", "common_prefix", "edit_similarity", "bleu4", "rouge_l_f1"):
            assert table.column(f"{column}_dpd").to_pylist() == pytest.approx(table.column(column).to_pylist())
    assert table.column("el_3_dpd").to_pylist() == pytest.approx(table.column("el_3").to_pylist())
    with pytest.raises(ValueError, match="dpd_el needs a dpd_seed"):
        MemorizationOptions(dpd_el=True)


@pytest.mark.slow
def test_dpd_el_draws_the_first_token_of_each_prefix_from_the_authors_sampler(memorized):
    """The continuation of a prefix starts from that prefix's cache: its first token is
    drawn as the authors' `generate` DPD step draws it."""
    model, sequences = memorized
    prefix, draws = 7, 6000
    copies = [sequences[4][:12]] * draws
    found = sampled_continuations_of_prefixes(model, copies, [[prefix]] * draws, seed=1, batch_size=512)
    want = dpd_next(model, sequences[4][:prefix])
    share = np.bincount([int(c[0]) for c in found.continuations], minlength=want.size) / draws
    assert np.all(share[want == 0] == 0)
    assert np.all(np.abs(share - want) <= 5 * np.sqrt(want * (1 - want) / draws) + 1e-9)


def test_memorized_sequences_score_above_the_others(memorized):
    model, sequences = memorized
    ma = [s.memorization_accuracy for s in teacher_forced(model, sequences)]
    assert min(ma[4:6]) > 0.9 and np.mean(ma[6:]) < 0.2


def test_extraction_strength_equals_its_definition(memorized):
    model, sequences = memorized
    for seq, stats in zip(sequences[:10], teacher_forced(model, sequences[:10])):
        assert stats.extraction_strength() == pytest.approx(extraction_strength_loop(model, seq))


def test_batched_greedy_equals_one_generate_per_prompt(memorized):
    model, sequences = memorized
    prompts = [s[:p] for s, p in zip(sequences[:9], [0, 1, 3, 5, 8, 2, 0, 7, 4])]
    lengths = [6, 9, 4, 12, 3, 7, 5, 10, 8]
    batched = greedy(model, prompts, lengths, batch_size=4)
    for prompt, n_new, got in zip(prompts, lengths, batched):
        assert got.tolist() == generate_one(model, prompt, n_new).tolist()


@pytest.mark.parametrize("in_slots", [True, False])
def test_greedy_from_sequence_caches_equals_one_generate_per_prompt(memorized, monkeypatch, in_slots):
    """Continuous batching (fewer slots than prompts, so slots take new prompts mid-way)
    and the batch path both give each prompt's own `generate` output."""
    model, sequences = memorized
    assert slots.supported(model, 64)
    monkeypatch.setattr(slots, "supported", lambda loaded, capacity: in_slots)
    owners = [0, 3, 5, 5, 10, 20, 21, 4, 4, 7]
    cuts = [1, 4, 2, 9, 6, 3, 12, 0, 15, 7]
    lengths = [6, 9, 4, 12, 3, 7, 5, 10, 1, 8]
    kv = sequence_caches(model, [sequences[i] for i in owners])
    prompts = [sequences[i][:c] for i, c in zip(owners, cuts)]
    got = greedy(model, prompts, lengths, batch_size=3, caches=kv)
    for prompt, n_new, tokens in zip(prompts, lengths, got):
        assert tokens.tolist() == generate_one(model, prompt, n_new).tolist()


def test_extraction_likelihood_equals_the_per_prefix_loop(memorized):
    model, sequences = memorized
    picked = [sequences[i][:18] for i in (0, 3, 5, 10, 20)]
    table = memorization_table(model, [str(i) for i in range(5)], picked, MemorizationOptions(n=4, k=6))
    for seq, el in zip(picked, table.column("el_4").to_pylist()):
        assert el == pytest.approx(el_loop(model, seq, 4), abs=1e-12)


@pytest.mark.parametrize("n", [4, 0])
def test_sequences_generated_for_in_blocks_give_the_table_of_all_at_once(memorized, n):
    """Memory is bounded by generating for a few sequences at a time; a block of sequences
    too short for the k-token prompt (null extraction scores) joins the others."""
    model, sequences = memorized
    picked = [sequences[0][:18], sequences[5][:18], sequences[3][:5], sequences[7][:5], sequences[20][:18]]
    ids = [str(i) for i in range(len(picked))]
    whole = memorization_table(model, ids, picked, MemorizationOptions(n=n, k=6))
    blocks = memorization_table(model, ids, picked, MemorizationOptions(n=n, k=6, sequences_in_flight=2))
    assert blocks.schema == whole.schema
    assert blocks.to_pylist() == whole.to_pylist()
    assert blocks.column("extractable_6").null_count == 2


def test_reuse_skips_generations_on_memorized_sequences(memorized):
    model, sequences = memorized
    recited, novel = sequences[5], sequences[20]
    stats = teacher_forced(model, [recited, novel])
    prefixes = [list(range(len(recited) - 4))] * 2
    found = continuations_of_prefixes(model, [recited, novel], prefixes, [s.hits for s in stats])
    assert found.n_generated < len(prefixes[0]) + len(prefixes[1]) // 2
    for owner, p, tokens in zip(found.owner, found.prefix, found.continuations):
        seq = [recited, novel][owner]
        assert tokens.tolist() == generate_one(model, seq[:p], len(seq) - p).tolist()


@settings(max_examples=8)
@given(st.lists(st.integers(2, 63), min_size=6, max_size=14), st.integers(0, 5))
def test_extraction_likelihood_property(memorized, tail, start):
    """EL_n on random sequences that partly follow a memorized one equals the loop."""
    model, sequences = memorized
    seq = np.concatenate([sequences[4][start : start + 6], np.asarray(tail, np.uint32)])
    table = memorization_table(model, ["x"], [seq], MemorizationOptions(n=3, k=0))
    assert table.column("el_3")[0].as_py() == pytest.approx(el_loop(model, seq, 3), abs=1e-12)


def test_k_extraction_scores_the_continuation_of_the_first_k_tokens(memorized):
    model, sequences = memorized
    table = memorization_table(model, ["a", "b"], [sequences[5], sequences[25]], MemorizationOptions(n=0, k=8))
    for row, seq in zip(table.to_pylist(), [sequences[5], sequences[25]]):
        generated = generate_one(model, seq[:8], len(seq) - 8)
        assert row["extractable_8"] == (generated.tolist() == seq[8:].tolist())
        assert row["common_prefix"] == next(
            (i for i, (a, b) in enumerate(zip(generated, seq[8:])) if a != b), len(generated)
        )


def _other_architecture(kind: str):
    """Tiny random models whose caches have sliding-window layers (window 32 tokens)."""
    torch.manual_seed(0)
    if kind == "gpt_neo":
        from transformers import GPTNeoConfig, GPTNeoForCausalLM

        config = GPTNeoConfig(
            vocab_size=64,
            hidden_size=32,
            num_layers=2,
            num_heads=4,
            window_size=32,
            attention_types=[[["global", "local"], 1]],
            max_position_embeddings=128,
            bos_token_id=0,
            eos_token_id=0,
        )
        return GPTNeoForCausalLM(config).eval()
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig

    config = Gemma3TextConfig(
        vocab_size=64,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=8,
        sliding_window=32,
        max_position_embeddings=128,
        layer_types=["sliding_attention", "full_attention"],
        pad_token_id=1,
        bos_token_id=2,
        eos_token_id=0,
    )
    return Gemma3ForCausalLM(config).eval()


@pytest.mark.parametrize("kind", ["gpt_neo", "gemma3"])
@pytest.mark.parametrize("total", [30, 40])
def test_greedy_from_caches_on_sliding_window_models(kind, total):
    """Rows that fit the window go through the slots, longer ones through the batch
    path; both equal one `generate` per prompt."""
    model = loaded(_other_architecture(kind))
    assert slots.supported(model, total) == (total <= 32)
    sequences = random_sequences(4, total, seed=3)
    kv = sequence_caches(model, sequences)
    cuts = [1, 5, 11, 20]
    prompts = [s[:c] for s, c in zip(sequences, cuts)]
    lengths = [total - c for c in cuts]
    got = greedy(model, prompts, lengths, batch_size=2, caches=kv)
    for prompt, n_new, tokens in zip(prompts, lengths, got):
        assert tokens.tolist() == generate_one(model, prompt, n_new).tolist()


def _choice_groups(seed: int, longest: int):
    """Groups as multiple-choice items make them: members sharing a context of 1-15
    tokens with continuations of 1-7 (scored), members of a group of one, and a group
    whose members differ from their first token."""
    rng = np.random.default_rng(seed)
    groups, last = [], []
    for _ in range(8):
        context = rng.integers(3, 60, size=rng.integers(1, 16)).tolist()
        tails = [rng.integers(3, 60, size=rng.integers(1, 8)).tolist() for _ in range(rng.integers(1, 5))]
        groups.append([(context + t)[-longest:] for t in tails])
        last.append([min(len(t), longest - 1) for t in tails])
    groups.append([[5, 6, 7], [8, 6, 7]])
    last.append([2, 2])
    return groups, last


@pytest.mark.parametrize("kind", ["llama", "gpt_neo", "gemma3"])
@pytest.mark.parametrize("longest", [30, 40])
def test_grouped_scores_equal_each_sequence_scored_apart(memorized, kind, longest):
    """A context computed once and continued from its cache gives every member's scores
    as scoring it alone does; rows longer than a sliding window (40 > 32) are scored apart."""
    model = memorized[0] if kind == "llama" else loaded(_other_architecture(kind))
    groups, last = _choice_groups(longest, longest)
    assert _caches_exact(model, longest) == (kind == "llama" or longest <= 32)
    got = [s for g in grouped_target_scores(model, groups, last, batch_size=5, min_saving=1.0) for s in g]
    alone = target_scores(model, [m for g in groups for m in g], [n for ns in last for n in ns], batch_size=1)
    for (logprobs, hits), (want_logprobs, want_hits) in zip(got, alone, strict=True):
        np.testing.assert_allclose(logprobs, want_logprobs, atol=1e-5)
        assert hits.tolist() == want_hits.tolist()
