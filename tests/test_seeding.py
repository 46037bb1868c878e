"""labkit.seeding: a seeded model has the same weights whatever other threads draw from Python's
shared ``random`` (a Dask worker's event loop does), and the same weights as
``keras.utils.set_random_seed`` gives a quiet process."""

from __future__ import annotations

import random
import threading

import keras
import numpy as np

from labkit import registry, seeding


def _model():
    """An mlp with dropout: glorot initializers and a Dropout SeedGenerator, each seeded by
    a draw from Python's random."""
    return registry.build("mlp", units=[8], dropout=0.5, input_shape=(4,), num_classes=3)


def _weights(model):
    return [np.asarray(w) for w in model.get_weights()]


def _dropout_seed(model):
    dropout = next(layer for layer in model.layers if isinstance(layer, keras.layers.Dropout))
    return np.asarray(dropout.seed_generator.state)


def test_seeded_builds_what_set_random_seed_builds_in_a_quiet_process():
    keras.utils.set_random_seed(7)
    quiet = _model()
    quiet_next = random.random()
    with seeding.seeded(7):
        model = _model()
    for a, b in zip(_weights(quiet), _weights(model), strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(_dropout_seed(quiet), _dropout_seed(model))
    # the shared generator goes on as if it had made the draws
    assert random.random() == quiet_next


def test_draws_from_the_shared_random_do_not_change_a_seeded_model():
    with seeding.seeded(7):
        reference = _model()
    with seeding.seeded(7):
        other = threading.Thread(target=lambda: [random.random() for _ in range(1000)])
        other.start()
        other.join()
        random.random()  # and this thread's own draws through the module
        model = _model()
    for a, b in zip(_weights(reference), _weights(model), strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(_dropout_seed(reference), _dropout_seed(model))
    keras.utils.set_random_seed(7)
    random.random()
    unseeded = _model()  # without seeded(), the same draw does change the weights
    assert not np.array_equal(_weights(unseeded)[0], _weights(reference)[0])


def test_threads_seeded_at_once_each_build_their_own_model():
    with seeding.seeded(1):
        one = _weights(_model())
    with seeding.seeded(2):
        two = _weights(_model())
    built = {}
    ready = threading.Barrier(2)

    def build(seed):
        with seeding.seeded(seed):
            ready.wait()  # both threads inside seeded() before either draws
            built[seed] = _weights(_model())

    threads = [threading.Thread(target=build, args=(s,)) for s in (1, 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for expected, seed in ((one, 1), (two, 2)):
        for a, b in zip(expected, built[seed], strict=True):
            np.testing.assert_array_equal(a, b)


def test_a_nested_seeded_block_reseeds_as_set_random_seed_does():
    keras.utils.set_random_seed(3)
    _model()
    keras.utils.set_random_seed(4)
    quiet = [_weights(_model()), _weights(_model())]
    with seeding.seeded(3):
        _model()
        with seeding.seeded(4):
            inner = _weights(_model())
        after = _weights(_model())  # goes on from where the inner block stopped
    for a, b in zip([*quiet[0], *quiet[1]], [*inner, *after], strict=True):
        np.testing.assert_array_equal(a, b)
