"""The callback list labkit gives fit (labkit.callback_list): the same training and the same
epoch lines as Keras's own, a batch hook called only on callbacks that listen, light ones at once
with the logs as they are, and Keras's dispatch for the rest."""

from __future__ import annotations

import contextlib
import io

import keras
import numpy as np
import pytest
import tensorflow as tf

from labkit.callback_list import EpochCallbacks, ProgressBar, listens, steps_of
from labkit.callbacks import EarlyStopping, Heartbeat
from labkit.data.batches import ArrayBatches


def model_and_data(seed: int = 0):
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, activation="relu"),
                              keras.layers.Dense(3, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    rng = np.random.default_rng(0)
    return model, rng.random((64, 4), dtype="float32"), rng.integers(0, 3, 64)


class Counting(keras.callbacks.Callback):
    """Reads every step's logs, as a callback of a user may."""

    def __init__(self) -> None:
        super().__init__()
        self.logs: list[dict] = []

    def on_train_batch_end(self, batch, logs=None):
        self.logs.append(dict(logs))


@pytest.fixture
def keras_dispatches(monkeypatch):
    """How often Keras's own CallbackList dispatched a train or test batch end."""
    seen = {"train": 0, "test": 0}
    for kind in seen:
        hook = f"on_{kind}_batch_end"
        original = getattr(keras.callbacks.CallbackList, hook)

        def counted(self, batch, logs=None, kind=kind, original=original):
            seen[kind] += 1
            return original(self, batch, logs)

        monkeypatch.setattr(keras.callbacks.CallbackList, hook, counted)
    return seen


def fit(callbacks, verbose: int, seed: int = 0, labkit: bool = True):
    """History and printed output of 2 epochs (8 steps each, validation 2 steps)."""
    model, x, y = model_and_data(seed)
    out = io.StringIO()
    if labkit:
        callbacks = EpochCallbacks(callbacks, model=model, verbose=verbose, epochs=2, steps=8,
                                   history=True)
    with contextlib.redirect_stdout(out):
        history = model.fit(x, y, batch_size=8, epochs=2, validation_data=(x[:16], y[:16]),
                            callbacks=callbacks, verbose=verbose, shuffle=False)
    return history.history, out.getvalue()


def test_no_listener_no_batch_dispatch_and_the_same_training_and_lines(keras_dispatches):
    ours, printed = fit([EarlyStopping(patience=5)], verbose=2)
    assert keras_dispatches == {"train": 0, "test": 0}  # Keras's per-step work skipped
    theirs, their_lines = fit([EarlyStopping(patience=5)], verbose=2, labkit=False)
    assert keras_dispatches["train"] == 16 and keras_dispatches["test"] == 4
    assert ours == theirs
    for mine, keras_line in zip(printed.splitlines(), their_lines.splitlines(), strict=True):
        if "/step" in mine:  # "8/8 - 0s - 2ms/step - accuracy: …": all but the times agree
            assert mine.split(" - ")[0] == keras_line.split(" - ")[0]
            assert mine.split(" - ")[3:] == keras_line.split(" - ")[3:]
        else:
            assert mine == keras_line


def test_a_callback_that_reads_every_step_gets_keras_s_dispatch(keras_dispatches):
    counting = Counting()
    fit([counting], verbose=2)
    assert keras_dispatches["train"] == 16 and keras_dispatches["test"] == 0
    assert len(counting.logs) == 16
    assert all(isinstance(v, float) for logs in counting.logs for v in logs.values())


def test_light_hooks_are_called_every_step_at_once(keras_dispatches):
    _, printed = fit([Heartbeat(interval=0.0)], verbose=2)
    assert keras_dispatches["train"] == 0
    assert printed.count("  epoch 1/2: step ") == 8 and printed.count("  epoch 2/2: step ") == 8


def test_the_terminal_bar_is_drawn_with_the_step_s_numbers(keras_dispatches, monkeypatch):
    drawn = []
    original = keras.callbacks.ProgbarLogger._update_progbar

    def update(self, batch, logs=None):
        drawn.append((batch, logs))
        return original(self, batch, logs)

    monkeypatch.setattr(keras.callbacks.ProgbarLogger, "_update_progbar", update)
    _, printed = fit([], verbose=1)
    assert keras_dispatches["train"] == 0
    assert 2 <= len(drawn) <= 16 and drawn[-1][0] == 7  # at least each epoch's last step
    assert all(isinstance(v, float) for _, logs in drawn for v in logs.values())
    assert "8/8" in printed and "val_accuracy" in printed


def test_which_callbacks_listen():
    assert not listens(keras.callbacks.LambdaCallback(on_epoch_end=print), "on_train_batch_end")
    assert listens(keras.callbacks.LambdaCallback(on_train_batch_end=print),
                   "on_train_batch_end")

    class Older(keras.callbacks.Callback):  # Keras's default train hook calls on_batch_end
        def on_batch_end(self, batch, logs=None):
            pass

    assert listens(Older(), "on_train_batch_end") and not listens(Older(), "on_test_batch_end")
    lines = keras.callbacks.ProgbarLogger()
    lines.set_params({"verbose": 2, "epochs": 1, "steps": 8})
    assert not listens(lines, "on_train_batch_end")  # counts steps it knows already
    lines.set_params({"verbose": 2, "epochs": 1, "steps": None})
    assert listens(lines, "on_train_batch_end")  # an unknown length: it counts them
    assert listens(ProgressBar(), "on_train_batch_end") and ProgressBar.light_batch_hooks


def test_steps_of_counts_what_keras_counts():
    batches = ArrayBatches(np.zeros((10, 2)), np.zeros(10), 4)
    assert steps_of(batches) == 3
    assert steps_of(tf.data.Dataset.range(10).batch(4)) == 3
    assert steps_of(tf.data.Dataset.range(10).filter(lambda v: v > 2).batch(4)) is None
