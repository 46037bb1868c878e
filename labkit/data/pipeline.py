"""Split → what the model is fed: the one place that turns a dataset split into model inputs, for
training, validation, evaluation, export checks and labs.

A split is a pair of numpy arrays ``(x, y)`` (raw values: uint8 images, say) or an unbatched
``tf.data.Dataset`` of ``(x, y)``. On the way in, values are cast to float32 and preprocessed
(``prep``, the dataset's :class:`~labkit.data.base.Preprocessing`: divided by its scale,
standardised). Functions take plain values (batch size, seed, augmentation), never a training
config.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from labkit._lazy import lazy_import
from labkit.data.base import Preprocessing

np = lazy_import("numpy")  # imported on first use: listing commands never pay for it

SHUFFLE_BUFFER = 10_000  # examples a streamed split shuffles among (an in-memory one: all)


def model_input(x, prep: Preprocessing | None = None) -> np.ndarray:
    """Raw arrays as the model sees them: float32, preprocessed by ``prep``."""
    return (prep or Preprocessing()).numpy(x)


def training_batches(split, batch_size: int, *, prep: Preprocessing | None = None,
                     seed: int | None = None, augment: dict[str, Any] | None = None,
                     features: Callable[[np.ndarray], np.ndarray] | None = None,
                     cache: bool = True, class_weight: dict[int, float] | None = None,
                     shuffle: bool = True, shard: tuple[int, int, int] | None = None):
    """The training pipeline: scaled, reshuffled every epoch (unless ``shuffle`` is False: the
    data's order every epoch), batched, augmented, prefetched.

    In-memory data goes through ``tf.data`` too: Keras's own ``fit(x, y, shuffle=True)`` on
    arrays repeats the same order every epoch once a global seed is set (measured with Keras
    3.15), which would make every epoch's minibatches the same. On another Keras backend (JAX,
    PyTorch) in-memory data become :class:`~labkit.data.batches.ArrayBatches` instead,
    without TensorFlow; streamed splits need TensorFlow.

    Args:
        augment: a resolved augmentation (:func:`labkit.augment.resolve`), applied per batch.
        features: maps the scaled inputs first (a frozen base's ``predict``) when only a head
            trains; in-memory splits only.
        cache: keep a streamed split's raw values in memory after the first epoch (False when
            the source already caches it on disk).
        class_weight: weights per class, for :class:`ArrayBatches` (it yields them as sample
            weights); a ``tf.data`` pipeline leaves them to ``fit(class_weight=...)``.
        shard: ``(process_id, processes, devices)`` for data-parallel training: this process's
            share of every global batch (see :func:`share_of_batches`).
    """
    import keras

    if keras.backend.backend() != "tensorflow" and isinstance(split, tuple):
        from labkit.data.batches import ArrayBatches

        x = model_input(split[0], prep)
        return ArrayBatches(features(x) if features is not None else x, split[1], batch_size,
                            seed=seed, augment=augment, class_weight=class_weight,
                            shuffle=shuffle, shard=shard or (0, 1, 1))
    import tensorflow as tf

    if isinstance(split, tuple):
        x, y = split
        x = model_input(x, prep)
        if features is not None:
            x = features(x)
        ds = tf.data.Dataset.from_tensor_slices((x, y))
        if shuffle:
            ds = ds.shuffle(len(y), seed=seed, reshuffle_each_iteration=True)
    else:
        if features is not None:
            raise ValueError("features= applies to in-memory splits only")
        ds = _preprocessed(split.cache() if cache else split, prep)
        if shuffle:
            ds = ds.shuffle(SHUFFLE_BUFFER, seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size)
    if shard is not None and shard[2] > 1:
        ds = share_of_batches(ds, *shard)
    if augment:
        from labkit import augment as augmentation

        ds = augmentation.apply(ds, augment, seed)
    return ds.prefetch(tf.data.AUTOTUNE)


def share_of_batches(ds, process_id: int, processes: int, devices: int):
    """Data-parallel: this process's contiguous share of each global batch of a ``tf.data``
    pipeline, as :class:`~labkit.data.batches.ArrayBatches` cuts in-memory ones. Every process
    reads the same stream in the same seeded order, so together they feed what one process
    would; a batch is first cut to a multiple of ``devices``, and one with fewer examples than
    devices is left out (on every process alike)."""
    import tensorflow as tf

    def share(x, y, *rest):
        n = tf.shape(y)[0]
        size = (n - n % devices) // processes
        return tuple(part[process_id * size:(process_id + 1) * size] for part in (x, y, *rest))

    return ds.filter(lambda x, y, *rest: tf.shape(y)[0] >= devices).map(share)


def inputs(split, batch_size: int, *, prep: Preprocessing | None = None,
           features: Callable[[np.ndarray], np.ndarray] | None = None, cache: bool = True):
    """What ``evaluate``/``predict``/``validation_data`` take, in order: scaled ``(x, y)``
    arrays for an in-memory split, a batched, cached pipeline for a streamed one; None stays
    None."""
    if split is None:
        return None
    if isinstance(split, tuple):
        x, y = split
        x = model_input(x, prep)
        return (features(x) if features is not None else x), y
    import tensorflow as tf

    return _preprocessed(split.cache() if cache else split, prep).batch(batch_size).prefetch(
        tf.data.AUTOTUNE)


def arrays(split, *, prep: Preprocessing | None = None,
           batch_size: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """Preprocessed inputs and labels of a split as numpy arrays (a stream is read once, in
    order)."""
    fed = inputs(split, batch_size, prep=prep, cache=False)
    if isinstance(fed, tuple):
        return fed
    xs, ys = zip(*((x.numpy(), y.numpy()) for x, y in fed), strict=True)
    return np.concatenate(xs), np.concatenate(ys)


def labels(split) -> np.ndarray:
    """A split's labels (a stream's read without decoding its inputs into batches)."""
    if isinstance(split, tuple):
        return np.asarray(split[1])
    return np.stack(list(split.map(lambda x, y: y).as_numpy_iterator()))


def count(split) -> int:
    """Examples in a split; a stream's cardinality, counted only if unknown."""
    if isinstance(split, tuple):
        return len(split[1])
    n = int(split.cardinality())
    return n if n >= 0 else int(split.reduce(0, lambda total, _: total + 1))


def _preprocessed(ds, prep: Preprocessing | None):
    import tensorflow as tf

    prep = prep or Preprocessing()
    return ds.map(lambda x, y: (prep.tensor(x), y), num_parallel_calls=tf.data.AUTOTUNE)

