"""GA, SGA, TA and TAU on the tiny memorizing model."""

import copy

import numpy as np
import pytest
import torch

from memscan.model.forward import teacher_forced
from memscan.model.interval import Interval
from memscan.model.training import accumulate_gradients
from memscan.unlearn import Targets, UnlearnConfig, Unlearning, run_unlearning
from memscan.unlearn.ta import TaskArithmetic
from tiny_model import loaded as wrap

INTERVAL = Targets(Interval(0.0, 0.25, 0.1, "fixed", 24))


def fresh(memorized):
    model, sequences = memorized
    return wrap(copy.deepcopy(model.model)), sequences


def mean_ma(model, sequences):
    return np.mean([s.memorization_accuracy for s in teacher_forced(model, sequences)])


@pytest.mark.parametrize("method", ["ga", "sga", "ta", "tau"])
def test_each_method_lowers_the_forget_sets_memorization(memorized, method):
    model, sequences = fresh(memorized)
    forget = sequences[:6]
    before = mean_ma(model, forget)
    state = Unlearning(model, forget, INTERVAL, UnlearnConfig(method, lr=3e-3, max_epochs=15)).run()
    after = mean_ma(model, forget)
    assert after < before - 0.3, (before, after, state.reason)
    assert state.records[-1].g == pytest.approx(teacher_forced_ma(model, forget))


def teacher_forced_ma(model, sequences):
    return [s.memorization_accuracy for s in teacher_forced(model, sequences)]


def test_sga_steps_only_on_the_selected_sequences(memorized):
    model, sequences = fresh(memorized)
    reference, _ = fresh(memorized)
    forget = sequences[:9]  # six memorized, three not
    config = UnlearnConfig("sga", lr=3e-3, max_epochs=1, gamma=0.95)
    state = Unlearning(model, forget, INTERVAL, config).run()
    selected = state.records[0].selected
    g0 = np.array(state.records[0].g)
    assert selected == sorted(set(np.flatnonzero(g0 >= 0.95).tolist()) | {int(g0.argmax())})
    assert 0 < len(selected) < len(forget)
    # the same update from the selected sequences alone
    optimizer = torch.optim.Adam(reference.model.parameters(), lr=3e-3, betas=(0.9, 0.98))
    accumulate_gradients(reference, [forget[i] for i in selected], ascent=True, micro_batch=8)
    optimizer.step()
    for a, b in zip(model.model.parameters(), reference.model.parameters()):
        assert torch.equal(a, b)


def test_sga_never_pushes_sequences_already_below_lo(memorized):
    model, sequences = fresh(memorized)
    targets = Targets(Interval(0.5, 0.9, 0.6, "fixed", 24))
    loop = Unlearning(model, sequences[:6], targets, UnlearnConfig("sga"))
    g = np.array([0.3, 0.95, 0.4, 0.8, 0.6, 0.2])
    assert loop.phase.select(g, targets) == [1, 3]


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
