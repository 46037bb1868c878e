"""labkit's training path vs plain Keras on the same data and model; prints throughput ratios.

    .venv/bin/python bench/bench_train.py [--epochs 5] [--repeat 3]

Both sides train the recipe's cnn on digits with the same optimizer, batch size and epochs; the
plain side builds, compiles, fits on float arrays and evaluates on the test split; labkit goes
through ``labkit.training.train`` (data loading, run directory, history, metrics, model and plot
writes included). Both are timed cold, graph tracing included, with the same progress output.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import tempfile
import time

from labkit._startup import import_tensorflow

import_tensorflow()  # TensorFlow's start-up notices, silenced as the CLI silences them
import keras  # noqa: E402
import numpy as np  # noqa: E402

from labkit import data, registry  # noqa: E402
from labkit.config import TrainConfig  # noqa: E402
from labkit.data import pipeline  # noqa: E402
from labkit.training import progress_mode, train  # noqa: E402


def plain_keras(epochs: int, batch_size: int) -> float:
    start = time.perf_counter()
    loaded = data.load("digits")
    x, y = pipeline.model_input(loaded.train[0], loaded.spec.preprocessing), loaded.train[1]
    xv, yv = pipeline.model_input(loaded.val[0], loaded.spec.preprocessing), loaded.val[1]
    model = registry.build("cnn", input_shape=loaded.spec.input_shape, num_classes=10)
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, batch_size=batch_size, epochs=epochs, validation_data=(xv, yv),
              verbose=progress_mode())
    model.evaluate(pipeline.model_input(loaded.test[0], loaded.spec.preprocessing), loaded.test[1],
                   verbose=0)
    return len(x) * epochs / (time.perf_counter() - start)


def labkit_train(epochs: int, batch_size: int) -> float:
    with tempfile.TemporaryDirectory() as runs_dir:
        config = TrainConfig("cnn", epochs=epochs, batch_size=batch_size, runs_dir=runs_dir)
        start = time.perf_counter()
        train(config, echo=lambda _: None)
        elapsed = time.perf_counter() - start
    return len(data.load("digits").train[0]) * epochs / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    keras.utils.set_random_seed(0)
    results = {"plain keras": [], "labkit": []}
    for _ in range(args.repeat):
        # both sides print their epoch lines as usual, into the void: only the result is shown
        with open(os.devnull, "w") as void, contextlib.redirect_stdout(void):
            results["plain keras"].append(plain_keras(args.epochs, args.batch_size))
            results["labkit"].append(labkit_train(args.epochs, args.batch_size))
    medians = {k: statistics.median(v) for k, v in results.items()}
    for name, value in medians.items():
        print(f"{name:<12} {value:8.0f} training images/s (median of {args.repeat})")
    print(f"labkit / plain keras: {medians['labkit'] / medians['plain keras']:.2f}")
    print(f"spread: {np.ptp(results['labkit']) / medians['labkit']:.0%} of the median (labkit), "
          f"{np.ptp(results['plain keras']) / medians['plain keras']:.0%} (plain keras)")


if __name__ == "__main__":
    main()
