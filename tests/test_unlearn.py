"""GA, SGA, TA, TAU, NPO and gradient difference on the tiny memorizing model."""

import copy

import numpy as np
import pytest
import torch

from memscan.model.forward import teacher_forced
from memscan.model.interval import Interval
from memscan.model.weights import cpu_copy
from memscan.unlearn import Targets, UnlearnConfig, Unlearning, run_unlearning
from memscan.unlearn.sga import SelectiveAscent
from memscan.unlearn.ta import TaskArithmetic
from tiny_model import loaded as wrap

INTERVAL = Targets(Interval(0.0, 0.25, 0.1, "fixed", 24))


def fresh(memorized):
    model, sequences = memorized
    return wrap(copy.deepcopy(model.model)), sequences


def mean_ma(model, sequences):
    return np.mean([s.memorization_accuracy for s in teacher_forced(model, sequences)])


@pytest.mark.parametrize("method", ["ga", "sga", "ta", "tau", "npo", "gd", "ga_mismatch"])
def test_each_method_lowers_the_forget_sets_memorization(memorized, method):
    model, sequences = fresh(memorized)
    forget = sequences[:6]
    before = mean_ma(model, forget)
    retain = sequences[20:] if method in ("gd", "ga_mismatch") else None
    config = UnlearnConfig(method, lr=3e-3, max_epochs=15)
    state = Unlearning(model, forget, INTERVAL, config, retain=retain).run()
    after = mean_ma(model, forget)
    assert after < before - 0.3, (before, after, state.reason)
    assert state.records[-1].g == pytest.approx(teacher_forced_ma(model, forget))


def teacher_forced_ma(model, sequences):
    return [s.memorization_accuracy for s in teacher_forced(model, sequences)]


def reference_step(model, micro_batches, ascent, lr):
    """One Adam step written out by hand: the loss is each micro-batch's mean token CE
    (x_2..x_T of every sequence), averaged over the micro-batches."""
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, betas=(0.9, 0.98))
    losses = []
    for batch in micro_batches:
        ids = torch.as_tensor(np.stack(batch).astype(np.int64))
        logits = model(input_ids=ids).logits[:, :-1].float()
        losses.append(torch.nn.functional.cross_entropy(logits.transpose(1, 2), ids[:, 1:]))
    loss = torch.stack(losses).mean()
    (-loss if ascent else loss).backward()
    optimizer.step()


def assert_same_weights(a, b, atol=1e-7):
    for x, y in zip(a.parameters(), b.parameters()):
        assert torch.allclose(x, y, rtol=0, atol=atol), float((x - y).abs().max())


def test_sga_selects_within_each_micro_batch_and_averages_their_losses(memorized):
    model, sequences = fresh(memorized)
    reference, _ = fresh(memorized)
    forget = sequences[:9]  # six memorized, three not: micro-batches [0..7] and [8]
    config = UnlearnConfig("sga", lr=3e-3, max_epochs=1, gamma=0.95)
    state = Unlearning(model, forget, INTERVAL, config).run()
    g0 = np.array(state.records[0].g)
    first = sorted(set(np.flatnonzero(g0[:8] >= 0.95).tolist()) | {int(g0[:8].argmax())})
    assert state.records[0].selected == [*first, 8]  # the second micro-batch's most memorized is its only one
    assert 0 < len(first) < 8
    reference_step(reference.model, [[forget[i] for i in first], [forget[8]]], ascent=True, lr=3e-3)
    assert_same_weights(model.model, reference.model)


def test_ga_steps_on_everything_with_the_same_loss(memorized):
    model, sequences = fresh(memorized)
    reference, _ = fresh(memorized)
    forget = sequences[:10]
    Unlearning(model, forget, INTERVAL, UnlearnConfig("ga", lr=3e-3, max_epochs=1)).run()
    reference_step(reference.model, [forget[:8], forget[8:]], ascent=True, lr=3e-3)
    assert_same_weights(model.model, reference.model)


def test_sga_selection_and_memscans_variants():
    targets = Targets(Interval(0.5, 0.9, 0.6, "fixed", 24))
    g = np.array([0.3, 0.2, 0.4, 0.8, 0.6, 0.95])
    assert SelectiveAscent(0.7).micro_batches(g, targets, 3) == [[2], [3, 5]]  # each micro-batch's most memorized
    assert SelectiveAscent(0.7, skip_below_lo=True).micro_batches(g, targets, 3) == [[3, 5]]
    assert SelectiveAscent(None).micro_batches(g, targets, 6) == [[5]]  # gamma = the interval's hi
    mean_below = np.array([0.1, 0.1, 0.95])  # mean 0.38 < mu_u 0.6, one still above hi
    assert SelectiveAscent(0.7).stop_reason(mean_below, None, targets)
    assert SelectiveAscent(0.7, strict_stop=True).stop_reason(mean_below, None, targets) is None


def test_ta_ascends_until_the_first_threshold_then_edits_from_the_switch(memorized):
    model, sequences = fresh(memorized)
    forget = sequences[:6]
    config = UnlearnConfig("ta", lr=3e-3, max_epochs=6, first_threshold=0.99)
    switch = {}

    def note(message):
        if "switching to task arithmetic" in message:
            switch["epoch"] = int(message.split()[1].rstrip(":"))
            switch["weights"] = cpu_copy(model.model)

    loop = Unlearning(model, forget, INTERVAL, config, log=note)
    state = loop.run()
    phases = [r.phase for r in state.records]
    assert phases[0] == "ascent" and phases.index("task-arithmetic") == switch["epoch"] >= 1
    assert np.mean(state.records[switch["epoch"] - 1].g) >= 0.99 > np.mean(state.records[switch["epoch"]].g)
    input_weights = cpu_copy(fresh(memorized)[0].model)
    assert any(not torch.equal(switch["weights"][n], input_weights[n]) for n in input_weights)  # theta_s, not theta_0


def test_training_keeps_fp32_master_weights(memorized):
    """A model loaded as on CUDA (bf16): one step at 5e-5 must move the weights as an fp32
    step does; Adam on the bf16 weights themselves would round most of it away."""
    model, sequences = fresh(memorized)
    model.model.to(torch.bfloat16)
    start = copy.deepcopy(model.model).float()
    reference = wrap(copy.deepcopy(start))
    forget = sequences[:6]
    Unlearning(model, forget, INTERVAL, UnlearnConfig("ga", max_epochs=1)).run()
    reference_step(reference.model, [forget], ascent=True, lr=5e-5)
    assert all(p.dtype == torch.float32 for p in model.model.parameters())
    assert_same_weights(model.model, reference.model, atol=1e-8)
    moved = [float((a != b).float().mean()) for a, b in zip(model.model.parameters(), start.parameters())]
    assert np.mean(moved) > 0.9


def test_task_arithmetic_is_exact(memorized):
    model, sequences = fresh(memorized)
    task = TaskArithmetic(model.model, lam=3.0)
    base = {n: p.detach().clone() for n, p in model.model.named_parameters()}
    with torch.no_grad():
        for p in model.model.parameters():
            p.add_(torch.randn_like(p) * 0.01)
    tuned = {n: p.detach().clone() for n, p in model.model.named_parameters()}
    with task.scored_weights(model.model):
        for n, p in model.model.named_parameters():
            assert torch.equal(p, base[n] + (-3.0) * (tuned[n] - base[n]))
    for n, p in model.model.named_parameters():
        assert torch.equal(p, tuned[n])  # the fine-tuned weights come back bit for bit


def test_an_exploding_loss_stops_on_the_last_good_weights(memorized):
    model, sequences = fresh(memorized)
    before = [p.detach().clone() for p in model.model.parameters()]
    state = Unlearning(model, sequences[:6], INTERVAL, UnlearnConfig("ga", max_ce=1e-6)).run()
    assert "exploding" in state.reason and "kept epoch 0" in state.reason
    assert all(torch.equal(a, b) for a, b in zip(before, model.model.parameters()))


class Interrupt(Exception):
    pass


def test_an_interrupted_run_resumes_to_the_same_result(memorized, tmp_path):
    forget = (["a", "b", "c", "d", "e", "f"], memorized[1][:6])
    unseen = memorized[1][6:]
    config = UnlearnConfig("tau", lr=3e-3, max_epochs=6, tau_switch=0.8)

    straight, _ = fresh(memorized)
    run_unlearning(straight, forget, unseen, config, tmp_path / "straight", log=lambda m: None)

    def stop_at_epoch_4(message):
        if message.startswith("epoch 4"):
            raise Interrupt

    resumed, _ = fresh(memorized)
    with pytest.raises(Interrupt):
        run_unlearning(resumed, forget, unseen, config, tmp_path / "resumed", log=stop_at_epoch_4)
    assert (tmp_path / "resumed" / "checkpoint.pt").exists()
    resumed, _ = fresh(memorized)  # a new process would start from the input model again
    messages = []
    run = run_unlearning(resumed, forget, unseen, config, tmp_path / "resumed", log=messages.append)
    assert any(m.startswith("resuming after epoch 3") for m in messages)
    for a, b in zip(straight.model.parameters(), resumed.model.parameters()):
        assert torch.equal(a, b)
    import pyarrow.parquet as pq

    assert pq.read_table(tmp_path / "straight" / "epochs.parquet").equals(
        pq.read_table(tmp_path / "resumed" / "epochs.parquet")
    )
    assert run["finished"] and not (tmp_path / "resumed" / "checkpoint.pt").exists()


def test_miau_is_recorded_every_epoch_when_tracked(memorized, tmp_path):
    model, sequences = fresh(memorized)
    forget = ([f"f{i}" for i in range(6)], sequences[:6])
    config = UnlearnConfig("ga", lr=3e-3, max_epochs=3, miau_neighbours=4)
    run_unlearning(model, forget, sequences[6:], config, tmp_path / "u", (0.0, 0.3), log=lambda m: None)
    import pyarrow.parquet as pq

    epochs = pq.read_table(tmp_path / "u" / "epochs.parquet").to_pandas()
    per_epoch = epochs.groupby("epoch")["miau_auc"].first()
    assert per_epoch.notna().all() and len(per_epoch) >= 2
    assert per_epoch.iloc[0] > 0.9  # before unlearning the memorized sequences stand out
    assert epochs["miau_pr_auc"].between(0, 1).all()


@pytest.mark.parametrize("first_threshold, ascent", [(0.0, True), (1.01, False)])
def test_tas_first_update_ascends_before_the_switch_and_descends_after(memorized, first_threshold, ascent):
    model, sequences = fresh(memorized)
    reference, _ = fresh(memorized)
    forget = sequences[:6]  # TA switches once mean g < first_threshold: never below 0.0, at once below 1.01
    config = UnlearnConfig("ta", lr=3e-3, max_epochs=1, first_threshold=first_threshold)
    state = Unlearning(model, forget, INTERVAL, config).run()
    assert state.records[0].phase == ("ascent" if ascent else "task-arithmetic")
    reference_step(reference.model, [forget], ascent=ascent, lr=3e-3)
    if ascent:  # before the switch the model itself is the output
        assert_same_weights(model.model, reference.model)
    else:  # after it the output is the edit theta_s - 3 (theta - theta_s), theta_s the input here
        base = fresh(memorized)[0].model
        for out, tuned, start in zip(model.model.parameters(), reference.model.parameters(), base.parameters()):
            assert torch.allclose(out, start - 3.0 * (tuned - start), rtol=0, atol=1e-6)


def reference_nll(model, sequences):
    """Each sequence's summed token CE over x_2..x_T, written out (the tiny model has no BOS context)."""
    ids = torch.as_tensor(np.stack(sequences).astype(np.int64))
    logits = model(input_ids=ids).logits[:, :-1].float()
    return torch.nn.functional.cross_entropy(logits.transpose(1, 2), ids[:, 1:], reduction="none").sum(1)


def grads(model):
    return [p.grad.clone() for p in model.parameters()]


def test_npos_first_update_is_ascent_on_the_sequence_nll_and_its_loss_2_log2_over_beta(memorized):
    from memscan.unlearn.npo import NegativePreference
    from memscan.unlearn.phase import TrainingData, Update

    model, sequences = fresh(memorized)
    reference, _ = fresh(memorized)
    forget = sequences[:10]
    phase = NegativePreference(beta=0.5)
    loss = phase.gradient(model, Update.whole(0, [list(range(8)), [8, 9]]), TrainingData(list(forget)))
    assert loss == pytest.approx(2 / 0.5 * np.log(2), rel=1e-6)  # pi_theta = pi_ref: softplus(0) = log 2
    # d/dtheta (2/beta) softplus(beta (ref - nll)) at ref = nll is -d nll: ascent on each micro-batch's mean NLL
    first, second = reference_nll(reference.model, forget[:8]), reference_nll(reference.model, forget[8:])
    (-(first.mean() + second.mean()) / 2).backward()
    for a, b in zip(grads(model.model), grads(reference.model)):
        assert torch.allclose(a, b, rtol=1e-5, atol=1e-7)


def test_npos_reference_survives_a_resume(memorized, tmp_path):
    model, sequences = fresh(memorized)
    config = UnlearnConfig("npo", lr=3e-3, max_epochs=2)
    first = Unlearning(model, sequences[:6], INTERVAL, config, checkpoint=tmp_path / "c.pt")
    first.run()
    again, _ = fresh(memorized)
    resumed = Unlearning(again, sequences[:6], INTERVAL, config, checkpoint=tmp_path / "c.pt")
    assert torch.equal(resumed.phase.reference, first.phase.reference)


def test_checkpoints_wait_for_their_interval_and_change_nothing(memorized, tmp_path, monkeypatch):
    """With `checkpoint_seconds` a checkpoint is written only once that long has passed since
    the last: on a clock that moves 1 s a reading, 3 epochs hold no checkpoint at 1e6 s and
    the run ends where one that checkpoints every update does; at 0 the last epoch is saved."""
    from memscan.unlearn import loop

    readings = iter(range(10**6))
    monkeypatch.setattr(loop.time, "perf_counter", lambda: float(next(readings)))
    config = UnlearnConfig("ga", lr=3e-3, max_epochs=3)
    ends = {}
    for every in (0.0, 1e6):
        model, sequences = fresh(memorized)
        path = tmp_path / f"{every}.pt"
        state = Unlearning(model, sequences[:6], INTERVAL, config, checkpoint=path, checkpoint_seconds=every).run()
        ends[every] = ([r.g for r in state.records], cpu_copy(model.model))
        assert path.exists() == (every == 0.0)
    assert ends[0.0][0] == ends[1e6][0]
    assert all(torch.equal(ends[0.0][1][k], ends[1e6][1][k]) for k in ends[0.0][1])


def test_gradient_difference_ascends_on_forget_and_descends_on_retain(memorized):
    from memscan.unlearn.gd import GradientDifference
    from memscan.unlearn.phase import TrainingData, Update

    model, sequences = fresh(memorized)
    reference, _ = fresh(memorized)
    forget, retain = list(sequences[:6]), list(sequences[20:25])
    update = Update.whole(1, [[0, 1, 2, 3], [4, 5]])
    loss = GradientDifference(retain_weight=0.5).gradient(model, update, TrainingData(forget, retain))
    # epoch 1 takes the retain set from position 6, cycling: [1, 2, 3, 4] and [0, 1]
    pairs = [[int(retain[i][0]) for i in (1, 2, 3, 4)], [int(retain[i][0]) for i in (0, 1)]]
    assert [[int(x[0]) for x in b] for b in update.retain_batches(retain)] == pairs
    # split across two processes, each pairs its micro-batch with the same retain sequences
    halves = [Update(1, update.micro_batches, [j], [0.5]).retain_batches(retain) for j in (0, 1)]
    assert [[int(x[0]) for x in half[0]] for half in halves] == pairs

    def mean_ce(batch):
        return reference_nll(reference.model, batch).sum() / sum(len(s) - 1 for s in batch)

    forget_ce = (mean_ce(forget[:4]) + mean_ce(forget[4:])) / 2
    retain_ce = (mean_ce([retain[i] for i in (1, 2, 3, 4)]) + mean_ce([retain[0], retain[1]])) / 2
    total = -forget_ce + 0.5 * retain_ce
    total.backward()
    assert loss == pytest.approx(float(total.detach()), rel=1e-5)
    for a, b in zip(grads(model.model), grads(reference.model)):
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-6)


def test_ga_mismatchs_first_loss_is_its_ascent_and_mismatch_terms_with_zero_kl(memorized):
    from memscan.unlearn.mismatch import Mismatch, mismatched, prompt_tokens, sequence_kl
    from memscan.unlearn.phase import TrainingData, Update

    model, sequences = fresh(memorized)
    reference, _ = fresh(memorized)
    forget, retain = list(sequences[:3]), list(sequences[20:26])
    phase = Mismatch(seed=4)
    loss = phase.gradient(model, Update.whole(0, [[0, 1, 2]]), TrainingData(forget, retain))
    completions, starts = mismatched(forget, retain, phase.completions_rng(0, 0))
    assert len(completions) == 15 and all(len(c) == len(forget[0]) for c in completions)
    assert all(np.array_equal(c[:p], forget[i // 5][:p]) for i, (c, p) in enumerate(zip(completions, starts)))

    def continuation_ce(batch, prompt):  # written out: mean CE of x_{p+1}..x_T per sequence, averaged
        ids = torch.as_tensor(np.stack(batch).astype(np.int64))
        logits = reference.model(input_ids=ids).logits[:, :-1].float()
        ce = torch.nn.functional.cross_entropy(logits.transpose(1, 2), ids[:, 1:], reduction="none")
        return ce[:, prompt - 1 :].mean(1).mean()

    p = prompt_tokens(forget[0])
    expected = 0.5 * -continuation_ce(forget, p) + 1.0 * continuation_ce(completions, p)
    expected.backward()
    assert loss == pytest.approx(float(expected.detach()), rel=1e-5)  # KL(reference || model) = 0 before any update
    for a, b in zip(grads(model.model), grads(reference.model)):
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-6)
    # the KL term itself, against torch's kl_div on a model that moved
    moved, _ = fresh(memorized)
    with torch.no_grad():
        for p_ in moved.model.parameters():
            p_.add_(0.01 * torch.randn_like(p_))
    ids = torch.as_tensor(np.stack(retain[:2]).astype(np.int64))
    log_q = torch.log_softmax(moved.model(input_ids=ids).logits.float(), -1)
    log_p = torch.log_softmax(reference.model(input_ids=ids).logits.float(), -1)
    direct = torch.nn.functional.kl_div(log_q, log_p, log_target=True, reduction="none").sum(-1).mean()
    tokens = sum(len(s) for s in retain[:2])  # the test model has no BOS context
    measured = sum(sequence_kl(moved, reference.model, s).detach() for s in retain[:2]) / tokens
    assert float(measured) == pytest.approx(float(direct.detach()), rel=1e-5) and float(measured) > 0


def test_ga_mismatchs_update_on_a_moved_model_is_the_written_out_loss_with_its_kl(memorized):
    """Away from the reference the KL term and its gradient count (both are zero at it):
    computed a retain sequence at a time, they equal the batched mean over the tokens."""
    from memscan.unlearn.mismatch import Mismatch, mismatched, prompt_tokens
    from memscan.unlearn.phase import TrainingData, Update

    model, sequences = fresh(memorized)
    reference_state = {k: v.clone() for k, v in model.model.state_dict().items()}
    generator = torch.Generator().manual_seed(5)
    with torch.no_grad():
        for parameter in model.model.parameters():
            parameter.add_(0.01 * torch.randn(parameter.shape, generator=generator))
    check = wrap(copy.deepcopy(model.model))
    reference = wrap(copy.deepcopy(memorized[0].model))
    forget, retain = list(sequences[:3]), list(sequences[20:26])
    phase = Mismatch(seed=4, reference_state=reference_state)
    loss = phase.gradient(model, Update.whole(0, [[0, 1, 2]]), TrainingData(forget, retain))

    def continuation_ce(batch, prompt):
        ids = torch.as_tensor(np.stack(batch).astype(np.int64))
        logits = check.model(input_ids=ids).logits[:, :-1].float()
        ce = torch.nn.functional.cross_entropy(logits.transpose(1, 2), ids[:, 1:], reduction="none")
        return ce[:, prompt - 1 :].mean(1).mean()

    completions, _ = mismatched(forget, retain, phase.completions_rng(0, 0))
    ids = torch.as_tensor(np.stack(retain[:3]).astype(np.int64))  # the update's retain micro-batch
    log_q = torch.log_softmax(check.model(input_ids=ids).logits.float(), -1)
    with torch.no_grad():
        log_p = torch.log_softmax(reference.model(input_ids=ids).logits.float(), -1)
    kl = torch.nn.functional.kl_div(log_q, log_p, log_target=True, reduction="none").sum(-1).mean()
    p = prompt_tokens(forget[0])
    expected = 0.5 * -continuation_ce(forget, p) + continuation_ce(completions, p) + kl
    expected.backward()
    assert float(kl.detach()) > 0 and loss == pytest.approx(float(expected.detach()), rel=1e-5)
    for a, b in zip(grads(model.model), grads(check.model)):
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-6)


def test_ga_mismatch_passes_no_more_sequences_at_once_than_a_micro_batch(memorized):
    """Its K = 5 completions per forget sequence go through the model a micro-batch at a
    time (one pass over all of them held 4 GB of logits for Gemma-3's vocabulary), its
    KL term a retain sequence at a time."""
    from memscan.unlearn.mismatch import Mismatch
    from memscan.unlearn.phase import TrainingData, Update

    model, sequences = fresh(memorized)
    phase = Mismatch(seed=4)
    phase.reference_model(model)  # the frozen copy, made before the model's passes are counted
    rows_per_pass = []
    forward = model.model.forward

    def counting(*args, **kwargs):
        rows_per_pass.append(kwargs["input_ids"].shape[0])
        return forward(*args, **kwargs)

    model.model.forward = counting
    forget, retain = list(sequences[:3]), list(sequences[20:26])
    phase.gradient(model, Update.whole(0, [[0, 1, 2]]), TrainingData(forget, retain))
    assert rows_per_pass == [3, 1, 1, 1, 3, 3, 3, 3, 3]  # ascent, KL a retain sequence at a time, 15 completions


def test_ga_mismatchs_reference_model_survives_a_resume(memorized, tmp_path):
    model, sequences = fresh(memorized)
    config = UnlearnConfig("ga_mismatch", lr=3e-3, max_epochs=2)
    first = Unlearning(model, sequences[:4], INTERVAL, config, checkpoint=tmp_path / "c.pt", retain=sequences[20:])
    first.run()
    again, _ = fresh(memorized)
    resumed = Unlearning(again, sequences[:4], INTERVAL, config, checkpoint=tmp_path / "c.pt", retain=sequences[20:])
    original, _ = fresh(memorized)
    for name, value in original.model.state_dict().items():  # the input model's weights, not the trained ones
        assert torch.equal(resumed.phase.reference_state[name], value)


def test_the_perplexity_guard_undoes_the_update_that_breaks_it_and_stops(memorized):
    """GA at a high rate wrecks the model: the guard keeps the last epoch within the limit,
    whose weights are those of a run stopped there by its epoch count."""
    from memscan.model.forward import perplexity

    model, sequences = fresh(memorized)
    forget, guard = sequences[:6], sequences[20:28]
    baseline = perplexity(model, guard)
    config = UnlearnConfig("ga", lr=3e-3, max_epochs=15, max_ppl_ratio=1.5)
    state = Unlearning(model, forget, Targets(Interval(0.0, 0.05, 0.0, "fixed", 24)), config, guard=guard).run()
    assert "raised the guard text's perplexity" in state.reason and f"kept epoch {state.epoch}" in state.reason
    assert state.updates == state.epoch == sum(r.train_ce is not None for r in state.records) - 1  # the undone one
    assert 0 < state.epoch < 15
    kept = perplexity(model, guard)
    assert kept <= 1.5 * baseline and kept == pytest.approx(state.guard_ppl, rel=1e-6)
    assert state.records[0].guard_ppl == pytest.approx(baseline, rel=1e-6)
    again, _ = fresh(memorized)
    stopped = UnlearnConfig("ga", lr=3e-3, max_epochs=state.epoch)
    Unlearning(again, forget, Targets(Interval(0.0, 0.05, 0.0, "fixed", 24)), stopped).run()
    assert_same_weights(model.model, again.model)


def test_a_perplexity_limit_is_a_ratio_above_one_and_needs_guard_text(memorized):
    from memscan.errors import UserError

    with pytest.raises(UserError, match="ratio above 1"):
        UnlearnConfig("ga", max_ppl_ratio=1.0)
    model, sequences = fresh(memorized)
    with pytest.raises(UserError, match="needs guard text"):
        Unlearning(model, sequences[:6], INTERVAL, UnlearnConfig("ga", max_ppl_ratio=1.2))


def test_stop_inside_ends_at_the_first_epoch_with_every_sequence_inside_the_interval(memorized):
    """The same records as the run without it, up to the first epoch where c(D_f) = 0."""
    model, sequences = fresh(memorized)
    forget = sequences[:6]
    targets = Targets(Interval(0.0, 0.6, 0.05, "fixed", 24))  # mu_u far below: GA's own rule fires later
    state = Unlearning(model, forget, targets, UnlearnConfig("ga", lr=3e-3, max_epochs=15, stop_inside=True)).run()
    assert state.reason.startswith("c(D_f) = 0")
    g = np.array(state.records[-1].g)
    assert ((g >= 0.0) & (g <= 0.6)).all()
    again, _ = fresh(memorized)
    plain = Unlearning(again, forget, targets, UnlearnConfig("ga", lr=3e-3, max_epochs=15)).run()
    outside = [int(((np.array(r.g) > 0.6) | (np.array(r.g) < 0.0)).sum()) for r in plain.records]
    first_inside = outside.index(0)
    assert state.epoch == first_inside < plain.epoch
    assert [r.g for r in state.records] == [r.g for r in plain.records[: first_inside + 1]]
