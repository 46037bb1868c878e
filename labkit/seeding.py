"""Seeds that give the same model wherever it is trained: alone in a process, in a Dask worker,
beside a web server or any other thread.

``keras.utils.set_random_seed(n)`` seeds Python's ``random``, NumPy and TensorFlow. Keras then
draws the seed of every initializer and ``SeedGenerator`` made without one (each
``glorot_uniform``, each ``Dropout``) from Python's ``random`` module, which is shared by the
whole process: another thread drawing from it meanwhile (a Dask worker's event loop does) hands
the same seed other weights, and a sweep's trial on a cluster then trained differently from the
same trial run alone. Inside :func:`seeded` the calling thread draws from a generator of its
own, seeded as ``set_random_seed`` seeds the shared one, so the draws are those a quiet process
makes::

    with seeding.seeded(42):         # instead of keras.utils.set_random_seed(42)
        model = build_model(...)     # the same weights whatever other threads do
"""

from __future__ import annotations

import contextlib
import importlib
import random
import threading
from collections.abc import Iterator

_local = threading.local()  # .rng: the generator of a thread inside seeded(), else None


class _PerThreadRandom:
    """Python's ``random`` module, except in a thread inside :func:`seeded`."""

    def __getattr__(self, name: str):
        return getattr(getattr(_local, "rng", None) or random, name)


@contextlib.contextmanager
def seeded(value: int) -> Iterator[None]:
    """``keras.utils.set_random_seed(value)``; inside, the seeds Keras draws in this thread
    come from a generator of the thread's own, seeded with ``value`` as the shared one is (so
    the draws are those of a quiet process), not from the generator every thread shares. A
    ``seeded`` block inside another reseeds the thread's generator, as ``set_random_seed``
    reseeds the shared one. On leaving the outermost block, the shared generator goes on from
    where the thread's stopped, as if it had made the draws."""
    import keras

    keras.utils.set_random_seed(value)
    _draw_keras_seeds_per_thread()
    outermost = getattr(_local, "rng", None) is None
    if outermost:
        _local.rng = random.Random(value)
    else:
        _local.rng.seed(value)
    try:
        yield
    finally:
        if outermost:
            random.setstate(_local.rng.getstate())
            _local.rng = None


def _draw_keras_seeds_per_thread() -> None:
    """Point the ``random`` Keras draws its default seeds from (``make_default_seed``, a private
    module of Keras) at :class:`_PerThreadRandom`; once, and only where Keras still has it."""
    try:
        module = importlib.import_module("keras.src.random.seed_generator")
    except ImportError:
        return
    if getattr(module, "python_random", None) is random:
        module.python_random = _PerThreadRandom()


def enable_determinism() -> None:
    """Deterministic kernels (TensorFlow op determinism); seeds are set by :func:`seeded`."""
    import keras

    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()
