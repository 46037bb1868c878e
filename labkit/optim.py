"""Optimizers by name, as the lecture introduces them."""

from __future__ import annotations

from labkit.errors import LabkitError

# name → (Keras class, default learning rate, extra arguments). Defaults are Keras's, except
# momentum's α = 0.9, the lecture's usual choice.
OPTIMIZERS = {
    "sgd": ("SGD", 0.01, {}),
    "momentum": ("SGD", 0.01, {"momentum": 0.9}),
    "rmsprop": ("RMSprop", 0.001, {}),
    "adam": ("Adam", 0.001, {}),
}


def check(name: str, learning_rate: float | None) -> None:
    if name not in OPTIMIZERS:
        raise LabkitError(f"--optimizer must be one of {', '.join(OPTIMIZERS)}. Received: {name!r}")
    if learning_rate is not None and (
            isinstance(learning_rate, bool) or not isinstance(learning_rate, (int, float))
            or not learning_rate > 0):
        raise LabkitError(f"--learning-rate must be > 0. Received: {learning_rate!r}")


def default_learning_rate(name: str) -> float:
    return OPTIMIZERS[name][1]


def make(name: str, learning_rate: float | None = None):
    """A fresh Keras optimizer ``name`` with ``learning_rate`` (its default when None)."""
    import keras

    check(name, learning_rate)
    class_name, default_lr, extra = OPTIMIZERS[name]
    cls = getattr(keras.optimizers, class_name)
    return cls(learning_rate=learning_rate or default_lr, **extra)
