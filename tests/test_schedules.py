"""StepLR, CosineAnnealingLR (with warm-up) and OneCycleLR against PyTorch's schedulers,
stepped by hand and inside fit, and their errors."""

from __future__ import annotations

import numpy as np
import pytest

import fastcnn
from fastcnn import optim
from fastcnn.errors import InputError
from fastcnn.schedules import CosineAnnealingLR, OneCycleLR, StepLR
from helpers import small_cnn, toy_images

torch = pytest.importorskip("torch", reason="the parity tests need PyTorch (pip install fastcnn[torch])")
lr_scheduler = torch.optim.lr_scheduler


def _torch_optimizer(kind="sgd", lr=0.1):
    params = [torch.nn.Parameter(torch.zeros(2))]
    if kind == "adam":
        return torch.optim.Adam(params, lr=lr)
    return torch.optim.SGD(params, lr=lr, momentum=0.9)


def _ours_optimizer(kind="sgd", lr=0.1):
    return optim.Adam(lr=lr) if kind == "adam" else optim.SGD(lr=lr, momentum=0.9)


def _rates(ours, theirs, steps, momentum=None):
    """(our rates, torch's rates[, our momenta, torch's momenta]) over ``steps`` steps."""
    got, want, got_m, want_m = [ours.get_last_lr()[0]], [theirs.get_last_lr()[0]], [], []
    for _ in range(steps):
        ours.step()
        theirs.optimizer.step()
        theirs.step()
        got.append(ours.get_last_lr()[0])
        want.append(theirs.get_last_lr()[0])
        if momentum:
            group = theirs.optimizer.param_groups[0]
            got_m.append(getattr(ours.optimizer, momentum))
            want_m.append(group["betas"][0] if "betas" in group else group["momentum"])
    return got, want, got_m, want_m


def test_step_lr_matches_pytorch():
    got, want, *_ = _rates(StepLR(_ours_optimizer(), step_size=3, gamma=0.5),
                           lr_scheduler.StepLR(_torch_optimizer(), step_size=3, gamma=0.5), 10)
    np.testing.assert_allclose(got, want, rtol=1e-12)


def test_cosine_annealing_matches_pytorch_to_its_last_step():
    got, want, *_ = _rates(CosineAnnealingLR(_ours_optimizer(), T_max=7, eta_min=0.001),
                           lr_scheduler.CosineAnnealingLR(_torch_optimizer(), T_max=7, eta_min=0.001), 7)
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-15)


def test_cosine_warm_up_matches_pytorchs_linear_then_cosine():
    torch_opt = _torch_optimizer()
    theirs = lr_scheduler.SequentialLR(torch_opt, [
        lr_scheduler.LinearLR(torch_opt, start_factor=0.1, total_iters=3),
        lr_scheduler.CosineAnnealingLR(torch_opt, T_max=7)], milestones=[3])
    ours = CosineAnnealingLR(_ours_optimizer(), T_max=10, warmup_steps=3, warmup_start_factor=0.1)
    got, want, *_ = _rates(ours, theirs, 10)
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-15)


@pytest.mark.parametrize("kind, momentum", [("sgd", "momentum"), ("adam", "beta1")])
@pytest.mark.parametrize("options", [{}, {"three_phase": True, "anneal_strategy": "linear"},
                                     {"pct_start": 0.5, "div_factor": 10.0}])
def test_one_cycle_matches_pytorch_rates_and_momenta(kind, momentum, options):
    ours = OneCycleLR(_ours_optimizer(kind), max_lr=0.5, total_steps=20, **options)
    theirs = lr_scheduler.OneCycleLR(_torch_optimizer(kind), max_lr=0.5, total_steps=20, **options)
    got, want, got_m, want_m = _rates(ours, theirs, 19, momentum)
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-15)
    np.testing.assert_allclose(got_m, want_m, rtol=1e-12)
    ours.step()  # step total_steps, after the last batch: the final rate stays
    assert ours.get_last_lr()[0] == pytest.approx(got[-1])


@pytest.mark.parametrize("three_phase", [False, True])
def test_one_cycle_with_a_warm_up_of_one_step(three_phase):
    # pct_start * total_steps == 1: a phase of no steps, where PyTorch divides by zero
    # (a fit of 4 batches, mnist_speedrun's pct_start 0.25)
    ours = OneCycleLR(_ours_optimizer(), max_lr=0.1, total_steps=4, pct_start=0.25,
                      three_phase=three_phase)
    rates = [ours.get_last_lr()[0]]
    for _ in range(3):
        ours.step()
        rates.append(ours.get_last_lr()[0])
    assert rates[0] == pytest.approx(0.1)  # the warm-up is over at once
    assert all(np.isfinite(rates)) and rates[-1] < rates[0]


def test_one_cycle_and_cosine_refuse_a_step_past_the_last():
    one_cycle = OneCycleLR(_ours_optimizer(), max_lr=0.1, epochs=2, steps_per_epoch=2)
    for _ in range(4):
        one_cycle.step()
    with pytest.raises(InputError, match="OneCycleLR was stepped past its last step \\(4\\)"):
        one_cycle.step()
    cosine = CosineAnnealingLR(_ours_optimizer(), T_max=2)
    cosine.step(), cosine.step()
    with pytest.raises(InputError, match="past its last step \\(2\\).*T_max counts"):
        cosine.step()


@pytest.mark.parametrize("make, words", [
    (lambda: StepLR(step_size=0), "step_size must be a whole number >= 1"),
    (lambda: CosineAnnealingLR(T_max=5, warmup_steps=5), "warmup_steps must be"),
    (lambda: OneCycleLR(max_lr=0.1, epochs=3), "epochs and steps_per_epoch both"),
    (lambda: OneCycleLR(optim.Adadelta(), max_lr=0.1, total_steps=5), "cycle_momentum=False"),
    (lambda: OneCycleLR(optim.RMSprop(), max_lr=0.1, total_steps=5), "momentum > 0"),
    (lambda: StepLR(optim.SGD(0.1), step_size=2, interval="iteration"), "interval must be"),
])
def test_bad_schedule_arguments_are_refused_with_what_to_do(make, words):
    with pytest.raises(InputError, match=words):
        make()


def test_an_unbound_schedule_stepped_by_hand_says_to_give_it_an_optimizer():
    with pytest.raises(RuntimeError, match="has no optimizer"):
        StepLR(step_size=2).step()


def test_fit_steps_one_cycle_per_batch_over_the_whole_fit_and_logs_the_rate():
    x, y = toy_images(40, seed=1)
    model = small_cnn(seed=1)
    schedule = OneCycleLR(max_lr=0.05)
    model.compile(optim.SGD(0.01, momentum=0.9), "cross_entropy", schedule=schedule)
    history = model.fit(x, y, epochs=2, batch_size=10, verbose=0)
    assert schedule.total_steps == 8 and schedule.last_epoch == 8
    reference = OneCycleLR(optim.SGD(0.01, momentum=0.9), max_lr=0.05, total_steps=8)
    expected = []
    for _ in range(2):  # the rate at each epoch's end: after its 4 batches' steps
        for _ in range(4):
            reference.step()
        expected.append(reference.get_last_lr()[0])
    np.testing.assert_allclose(history.history["learning_rate"], expected, rtol=1e-12)
    with pytest.raises(InputError, match="stepped past its last step"):
        model.fit(x, y, epochs=1, batch_size=10, verbose=0)


def test_fit_steps_an_epoch_schedule_in_the_callbacks_once_per_epoch():
    x, y = toy_images(20, seed=2)
    model = small_cnn(seed=2)
    model.compile(optim.SGD(0.1), "cross_entropy")
    schedule = StepLR(step_size=1, gamma=0.5)
    history = model.fit(x, y, epochs=3, batch_size=10, verbose=0, callbacks=[schedule])
    np.testing.assert_allclose(history.history["learning_rate"], [0.1, 0.05, 0.025])
    assert model.optimizer.lr == pytest.approx(0.0125)


def test_compile_refuses_a_schedule_that_is_not_one():
    with pytest.raises(TypeError, match="fastcnn.schedules object"):
        small_cnn().compile("sgd", schedule=lambda epoch: 0.1)
