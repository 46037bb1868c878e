"""How training batches reach the model on a Keras backend other than TensorFlow: numpy arrays
given to ``fit`` (Keras's own array adapter, what the keras-io script does) against labkit's
:class:`~labkit.data.batches.ArrayBatches` with one or several worker threads.

    KERAS_BACKEND=jax .venv/bin/python bench/bench_feed.py [--epochs 4] [--workers 1 4]

The keras-io MNIST convnet, batch 128, Adam, on 54 000 random MNIST-shaped images with 6 000
for validation, all in this process; prints the steady images/s (median epoch after the first,
validation included) of each feed.
"""

from __future__ import annotations

import argparse
import statistics

import keras
import numpy as np
from bench_train import EpochClock  # bench/ is the script's folder, first on sys.path

from labkit.data.batches import ArrayBatches

TRAIN, VALIDATION = 54_000, 6_000


def convnet() -> keras.Model:
    layers = keras.layers
    model = keras.Sequential([
        keras.Input((28, 28, 1)),
        layers.Conv2D(32, 3, activation="relu"), layers.MaxPooling2D(2),
        layers.Conv2D(64, 3, activation="relu"), layers.MaxPooling2D(2),
        layers.Flatten(), layers.Dropout(0.5), layers.Dense(10, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 4])
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    x = rng.random((TRAIN + VALIDATION, 28, 28, 1), dtype=np.float32)
    y = rng.integers(0, 10, TRAIN + VALIDATION)
    train, validation = (x[:TRAIN], y[:TRAIN]), (x[TRAIN:], y[TRAIN:])
    feeds = {"arrays": lambda: train}
    for workers in args.workers:
        feeds[f"ArrayBatches workers={workers}"] = lambda w=workers: (
            ArrayBatches(*train, 128, seed=0, workers=w),)
    print(f"Keras {keras.__version__} on {keras.backend.backend()}")
    for name, feed in [*feeds.items(), *feeds.items()]:  # twice, interleaved
        keras.utils.set_random_seed(0)
        times = EpochClock()
        fed = feed()
        extra = {"batch_size": 128} if len(fed) == 2 else {}
        convnet().fit(*fed, epochs=args.epochs, validation_data=validation, callbacks=[times],
                      verbose=0, **extra)
        print(f"{name:<24} {TRAIN / statistics.median(times.seconds[1:]):8.0f} images/s steady",
              flush=True)


if __name__ == "__main__":
    main()
