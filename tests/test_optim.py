"""Optimizers and learning-rate schedules (labkit.optim): each option is checked where it lands —
the compiled optimizer, the schedule's values at given steps, the history of a run."""

import keras
import numpy as np
import pytest
from helpers import fit, history

from labkit import layout, optim, training
from labkit.config import TrainConfig
from labkit.data.base import DatasetSpec


@pytest.mark.parametrize(("name", "params", "expected"), [
    ("sgd", {}, {"momentum": 0.0, "nesterov": False}),
    ("momentum", {"momentum": 0.5}, {"momentum": 0.5, "nesterov": False}),
    ("momentum", {}, {"momentum": 0.9, "nesterov": False}),
    ("nesterov", {"momentum": 0.8}, {"momentum": 0.8, "nesterov": True}),
    ("rmsprop", {"rho": 0.8, "momentum": 0.1, "epsilon": 1e-5},
     {"rho": 0.8, "momentum": 0.1, "epsilon": 1e-5}),
    ("adam", {"beta_1": 0.8, "beta_2": 0.99, "epsilon": 1e-6},
     {"beta_1": 0.8, "beta_2": 0.99, "epsilon": 1e-6}),
    ("adam", {"clipnorm": 1.5}, {"clipnorm": 1.5, "clipvalue": None}),
    ("sgd", {"clipvalue": 0.5}, {"clipvalue": 0.5, "clipnorm": None}),
])
def test_optimizer_options_reach_the_compiled_optimizer(name, params, expected):
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, activation="softmax")])
    cfg = TrainConfig(recipe="mlp", optimizer=name, learning_rate=0.05, **params).resolve()
    training.compile_model(model, cfg, DatasetSpec("t", (3,), 2))
    got = model.optimizer.get_config()
    assert type(model.optimizer).__name__ == optim.OPTIMIZERS[name].keras_class
    assert got["learning_rate"] == pytest.approx(0.05)
    for key, value in expected.items():
        assert got[key] == (pytest.approx(value) if value is not None else None), key


def test_trained_run_saves_its_optimizer_with_hyperparameters(tmp_path):
    run = fit(tmp_path, epochs=1, optimizer="nesterov", learning_rate=0.02, momentum=0.7,
              clipnorm=2.0)
    saved = keras.models.load_model(run.file(layout.MODEL)).optimizer.get_config()
    assert saved["nesterov"] and saved["momentum"] == pytest.approx(0.7)
    assert saved["clipnorm"] == pytest.approx(2.0)
    assert saved["learning_rate"] == pytest.approx(0.02)


# --- schedules --------------------------------------------------------------------------------

# (schedule, ε at epochs 0, 1, 2, 3, 4) computed by hand for ε₀ = 0.1.
SCHEDULE_VALUES = [
    ("constant", [0.1] * 5),
    ("exponential(rate=0.5, every=2)", [0.1, 0.1 * 0.5 ** 0.5, 0.05, 0.1 * 0.5 ** 1.5, 0.025]),
    ("inverse-time(tau=2)", [0.1, 0.1 / 1.5, 0.05, 0.1 / 2.5, 0.1 / 3]),
    ("step(every=2, factor=0.1)", [0.1, 0.1, 0.01, 0.01, 0.001]),
    ("piecewise(boundaries=[1, 3], factors=[1, 0.5, 0.1])", [0.1, 0.1, 0.05, 0.05, 0.01]),
    ("cosine(epochs=4)", [0.1, 0.1 * (1 + np.cos(np.pi / 4)) / 2, 0.05,
                          0.1 * (1 + np.cos(3 * np.pi / 4)) / 2, 0.0]),
]


@pytest.mark.parametrize(("text", "values"), SCHEDULE_VALUES)
def test_schedule_values_at_given_steps(text, values):
    schedule = optim.resolve_schedule(text)
    steps_per_epoch = 10
    opt = optim.make("sgd", 0.1, schedule=schedule, steps_per_epoch=steps_per_epoch)
    for epoch, expected in enumerate(values):
        opt.iterations.assign(epoch * steps_per_epoch)
        assert float(opt.learning_rate) == pytest.approx(expected, rel=1e-5, abs=1e-9), epoch
        assert optim.expected_learning_rate(0.1, schedule, epoch) == pytest.approx(expected)


def test_inverse_time_meets_the_robbins_monro_conditions():
    schedule = optim.resolve_schedule("inverse-time(tau=1)")
    epochs = np.arange(0, 10**6)
    values = np.array([optim.expected_learning_rate(1.0, schedule, k) for k in epochs[::1000]])
    # Σε diverges like log k; Σε² converges (to π²/6 for τ = 1, ε₀ = 1)
    assert values.sum() * 1000 > 10 and (1 / (1 + epochs) ** 2).sum() < 1.65


def test_history_has_the_learning_rate_of_each_epoch(tmp_path):
    run = fit(tmp_path, epochs=3, optimizer="sgd", learning_rate=0.1,
              schedule="exponential(rate=0.5, every=1)")
    assert history(run)[layout.LEARNING_RATE].tolist() == \
        pytest.approx([0.1, 0.05, 0.025], rel=1e-5)


def test_plateau_schedule_lowers_the_rate_when_the_metric_stalls(tmp_path):
    run = fit(tmp_path, epochs=4, optimizer="sgd", learning_rate=0.1,
              schedule="plateau(factor=0.5, patience=0, min_delta=10)")
    assert history(run)[layout.LEARNING_RATE].tolist() == \
        pytest.approx([0.1, 0.1, 0.05, 0.025], rel=1e-5)
