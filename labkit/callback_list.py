"""The callback list labkit gives ``fit`` and ``evaluate``: Keras's, without its per-step cost
where no callback listens.

After every step Keras calls every callback's batch hooks with the step's logs turned into
Python numbers: a host sync per step (under JAX on a thread of its own, whose work competes with
training's for the interpreter). With one line per epoch (``verbose=2``: logs, CI, notebooks)
none of Keras's own callbacks reads them, yet on a small model under JAX on 2 cores this halves
the steps' speed (measured: the README's speed section). :class:`EpochCallbacks` calls a batch
hook only when a callback overrides it; a callback whose hooks are light (``light_batch_hooks =
True``: microseconds, the logs read only now and then, as :class:`ProgressBar` and
:class:`~labkit.callbacks.Heartbeat`) is called at once with the logs as they are; any other
listener (TensorBoard's, say) gets Keras's own dispatch, as before.
"""

from __future__ import annotations

import time

import keras
import numpy as np

_HOOKS = {  # batch hook → the older name Keras's default calls (a callback may override that)
    "on_train_batch_begin": "on_batch_begin", "on_train_batch_end": "on_batch_end",
    "on_test_batch_begin": None, "on_test_batch_end": None,
    "on_predict_batch_begin": None, "on_predict_batch_end": None,
}


class EpochCallbacks(keras.callbacks.CallbackList):
    """Keras's ``CallbackList`` (with its History and progress output, as ``fit`` adds them),
    calling each batch hook only on the callbacks that listen to it; none: not at all.

    Args:
        callbacks: the callbacks.
        model: the model they watch.
        verbose: Keras's ``verbose``: 1 draws a :class:`ProgressBar`, 2 a line per epoch.
        epochs, steps: what Keras's progress output counts to (``steps``: batches an epoch,
            None when unknown; see :func:`steps_of`).
        history: add Keras's History (``fit`` returns it).
    """

    def __init__(self, callbacks=(), *, model, verbose: int = 0, epochs: int = 1,
                 steps: int | None = None, history: bool = False) -> None:
        callbacks = [*callbacks, *([ProgressBar()] if verbose == 1 else [])]
        super().__init__(callbacks, add_history=history, add_progbar=verbose != 0, model=model,
                         verbose=verbose, epochs=epochs, steps=steps)

    def on_train_batch_begin(self, batch, logs=None):
        self._batch("on_train_batch_begin", batch, logs)

    def on_train_batch_end(self, batch, logs=None):
        self._batch("on_train_batch_end", batch, logs)

    def on_test_batch_begin(self, batch, logs=None):
        self._batch("on_test_batch_begin", batch, logs)

    def on_test_batch_end(self, batch, logs=None):
        self._batch("on_test_batch_end", batch, logs)

    def on_predict_batch_begin(self, batch, logs=None):
        self._batch("on_predict_batch_begin", batch, logs)

    def on_predict_batch_end(self, batch, logs=None):
        self._batch("on_predict_batch_end", batch, logs)

    def _batch(self, hook: str, batch: int, logs) -> None:
        listening = [c for c in self.callbacks if listens(c, hook)]
        if not listening:
            return
        if all(getattr(c, "light_batch_hooks", False) for c in listening):
            for callback in listening:
                getattr(callback, hook)(batch, logs)
            return
        getattr(keras.callbacks.CallbackList, hook)(self, batch, logs)  # Keras's own dispatch


def listens(callback, hook: str) -> bool:
    """Whether ``callback`` does anything in ``hook``: it overrides it (or the older name
    Keras's default calls). Keras's progress output with a line per epoch and a known number of
    steps does not: it only counts steps it knows already."""
    if isinstance(callback, keras.callbacks.ProgbarLogger) and \
            not isinstance(callback, ProgressBar) and callback.verbose != 1 and \
            callback.target is not None:
        return False
    older = _HOOKS[hook]
    return _own(callback, hook) or (older is not None and _own(callback, older))


def _own(callback, hook: str) -> bool:
    """Whether ``callback``'s ``hook`` is not Keras's default: a method of its class, or a
    function set on it (as LambdaCallback sets them)."""
    method = getattr(callback, hook)
    return getattr(method, "__func__", method) is not getattr(keras.callbacks.Callback, hook)


class ProgressBar(keras.callbacks.ProgbarLogger):
    """Keras's progress bar (``verbose=1``), given a step's logs only when it would redraw
    (every :data:`REDRAW` seconds, as Keras's bar), so the other steps cost no host sync."""

    light_batch_hooks = True
    REDRAW = 0.05

    def __init__(self) -> None:
        super().__init__()
        self._drawn = 0.0

    def on_train_batch_end(self, batch, logs=None):
        self._now_and_then(super().on_train_batch_end, batch, logs)

    def on_test_batch_end(self, batch, logs=None):
        self._now_and_then(super().on_test_batch_end, batch, logs)

    def on_predict_batch_end(self, batch, logs=None):
        self._now_and_then(super().on_predict_batch_end, batch, None)

    def _now_and_then(self, hook, batch: int, logs) -> None:
        now = time.monotonic()
        if now - self._drawn >= self.REDRAW or batch + 1 == self.target:
            self._drawn = now
            hook(batch, _numbers(logs))


def _numbers(logs):
    """A step's logs as Python numbers (a host sync), as Keras gives them to callbacks."""
    if not logs:
        return logs
    return {k: float(v) if np.ndim(v) == 0 else v for k, v in logs.items()}


def steps_of(batches) -> int | None:
    """The batches an epoch of ``batches`` (a ``PyDataset`` or a ``tf.data`` dataset) has, as
    Keras counts them for its progress output; None when unknown (a stream of unknown length)."""
    if isinstance(batches, keras.utils.PyDataset):
        return batches.num_batches
    cardinality = int(batches.cardinality())
    return cardinality if cardinality >= 0 else None
