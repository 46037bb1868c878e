"""Split → what the model is fed: the one place that turns a dataset split into model inputs, for
training, validation, evaluation, export checks and labs.

A split is a pair of numpy arrays ``(x, y)`` (raw values: uint8 images, say) or an unbatched
``tf.data.Dataset`` of ``(x, y)``. On the way in, values are cast to float32 and divided by the
dataset's ``scale``. Functions take plain values (batch size, seed, augmentation), never a
training config.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

SHUFFLE_BUFFER = 10_000  # examples a streamed split shuffles among (an in-memory one: all)


def model_input(x, scale: float = 1.0) -> np.ndarray:
    """Raw arrays as the model sees them: float32, divided by ``scale``."""
    return np.asarray(x, dtype="float32") / np.float32(scale)


def training_batches(split, batch_size: int, *, scale: float = 1.0, seed: int | None = None,
                     augment: dict[str, Any] | None = None,
                     features: Callable[[np.ndarray], np.ndarray] | None = None):
    """The training pipeline: scaled, reshuffled every epoch, batched, augmented, prefetched.

    In-memory data goes through ``tf.data`` too: Keras's own ``fit(x, y, shuffle=True)`` on
    arrays repeats the same order every epoch once a global seed is set (measured with Keras
    3.15), which would make every epoch's minibatches the same.

    Args:
        augment: a resolved augmentation (:func:`labkit.augment.resolve`), applied per batch.
        features: maps the scaled inputs first (a frozen base's ``predict``) when only a head
            trains; in-memory splits only.
    """
    import tensorflow as tf

    if isinstance(split, tuple):
        x, y = split
        x = model_input(x, scale)
        if features is not None:
            x = features(x)
        ds = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(
            len(y), seed=seed, reshuffle_each_iteration=True)
    else:
        if features is not None:
            raise ValueError("features= applies to in-memory splits only")
        ds = _scaled(split, scale).cache().shuffle(SHUFFLE_BUFFER, seed=seed,
                                                   reshuffle_each_iteration=True)
    ds = ds.batch(batch_size)
    if augment:
        from labkit import augment as augmentation

        ds = augmentation.apply(ds, augment, seed)
    return ds.prefetch(tf.data.AUTOTUNE)


def inputs(split, batch_size: int, *, scale: float = 1.0,
           features: Callable[[np.ndarray], np.ndarray] | None = None):
    """What ``evaluate``/``predict``/``validation_data`` take, in order: scaled ``(x, y)``
    arrays for an in-memory split, a batched, cached pipeline for a streamed one; None stays
    None."""
    if split is None:
        return None
    if isinstance(split, tuple):
        x, y = split
        x = model_input(x, scale)
        return (features(x) if features is not None else x), y
    import tensorflow as tf

    return _scaled(split, scale).cache().batch(batch_size).prefetch(tf.data.AUTOTUNE)


def arrays(split, *, scale: float = 1.0, batch_size: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """Scaled inputs and labels of a split as numpy arrays (a stream is read once, in order)."""
    fed = inputs(split, batch_size, scale=scale)
    if isinstance(fed, tuple):
        return fed
    xs, ys = zip(*((x.numpy(), y.numpy()) for x, y in fed), strict=True)
    return np.concatenate(xs), np.concatenate(ys)


def labels(split) -> np.ndarray:
    """A split's labels (a stream's read without decoding its inputs into batches)."""
    if isinstance(split, tuple):
        return np.asarray(split[1])
    return np.fromiter(split.map(lambda x, y: y).as_numpy_iterator(), dtype="int64")


def count(split) -> int:
    """Examples in a split; a stream's cardinality, counted only if unknown."""
    if isinstance(split, tuple):
        return len(split[1])
    n = int(split.cardinality())
    return n if n >= 0 else int(split.reduce(0, lambda total, _: total + 1))


def _scaled(ds, scale: float):
    import tensorflow as tf

    factor = tf.constant(scale, tf.float32)
    return ds.map(lambda x, y: (tf.cast(x, tf.float32) / factor, y),
                  num_parallel_calls=tf.data.AUTOTUNE)
