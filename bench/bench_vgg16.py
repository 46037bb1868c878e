"""The VGG16 head phase: labkit's ``vgg16_transfer`` (the frozen base's features computed once,
the head trained on them) against plain Keras fitting the frozen model end to end.

    .venv/bin/python bench/bench_vgg16.py [--images 200] [--epochs 3]

Both train the R lab's feature-extraction model (notop VGG16 at 150×150, flatten, dense 256,
dropout 0.5, one sigmoid unit; random start values, as offline there are no ImageNet weights)
on the same random two-class uint8 images, with RMSprop at 2e-5, batch 20 and a 20 %
validation split, then evaluate on the test part; both timed whole, in this process.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from labkit._startup import import_tensorflow

import_tensorflow()  # TensorFlow's start-up notices, silenced as the CLI silences them
import keras  # noqa: E402
import numpy as np  # noqa: E402

from labkit.config import TrainConfig  # noqa: E402
from labkit.training import progress_mode, train  # noqa: E402


def plain_keras(x, y, epochs: int) -> float:
    start = time.perf_counter()
    n_test = len(x) // 5
    x_train, y_train = x[n_test:].astype("float32"), y[n_test:]
    base = keras.applications.VGG16(include_top=False, weights=None, input_shape=(150, 150, 3))
    base.trainable = False
    inputs = keras.Input((150, 150, 3))
    features = base(keras.applications.vgg16.preprocess_input(inputs))
    hidden = keras.layers.Dense(256, activation="relu")(keras.layers.Flatten()(features))
    outputs = keras.layers.Dense(1, activation="sigmoid")(keras.layers.Dropout(0.5)(hidden))
    model = keras.Model(inputs, outputs)
    model.compile(keras.optimizers.RMSprop(2e-5), "binary_crossentropy", metrics=["accuracy"])
    model.fit(x_train, y_train, batch_size=20, epochs=epochs, validation_split=0.2,
              verbose=progress_mode())
    model.evaluate(x[:n_test].astype("float32"), y[:n_test], verbose=0)
    return time.perf_counter() - start


def labkit_train(path: Path, epochs: int) -> float:
    with tempfile.TemporaryDirectory() as runs_dir:
        config = TrainConfig("vgg16_transfer", dataset=str(path), hparams={"weights": "none"},
                             epochs=epochs, batch_size=20, runs_dir=runs_dir)
        start = time.perf_counter()
        train(config, echo=lambda _: None)
        return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (args.images, 150, 150, 3), dtype=np.uint8)
    y = rng.integers(0, 2, args.images)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "images.npz"
        np.savez(path, x=x, y=y)
        keras.utils.set_random_seed(0)
        plain = plain_keras(x, y, args.epochs)
        ours = labkit_train(path, args.epochs)
    print(f"plain Keras, frozen base end to end: {plain:6.1f} s")
    print(f"labkit, features computed once:      {ours:6.1f} s")
    print(f"labkit / plain Keras time: {ours / plain:.2f} ({plain / ours:.1f}× faster), "
          f"{args.images} images, {args.epochs} epochs")


if __name__ == "__main__":
    main()
