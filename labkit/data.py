"""Datasets by name: a spec (input shape, classes, task) and train / validation / test splits.

Small data stay numpy arrays (images as uint8, scaled on the way into the model); TFDS data stream
through ``tf.data``. Nothing here needs the network except a TFDS download, which is optional.
"""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from labkit.errors import LabkitError

# Splits of the bundled and generated sets are fixed, so runs with different seeds are compared
# on the same validation and test examples.
SPLIT_SEED = 0
PLAYGROUND_NAMES = ("circle", "xor", "gauss", "spiral")
# name → (source, input shape, classes, description); enough to describe a model without loading.
DATASETS = {
    "digits": ("bundled", (8, 8, 1), 10,
               "8x8 handwritten digits bundled with scikit-learn (1 797 images)"),
    "circle": ("generated", (2,), 2, "TensorFlow Playground: a disc inside a ring"),
    "xor": ("generated", (2,), 2, "TensorFlow Playground: quadrants, label = sign(x1 * x2)"),
    "gauss": ("generated", (2,), 2, "TensorFlow Playground: two Gaussian blobs"),
    "spiral": ("generated", (2,), 2, "TensorFlow Playground: two interleaved spirals"),
    "control_charts": ("generated", (60, 1), 6,
                       "synthetic control-chart time series: 6 patterns (1 200 series)"),
    "mnist": ("tfds", (28, 28, 1), 10, "28x28 grey handwritten digits (70 000 images)"),
    "fashion_mnist": ("tfds", (28, 28, 1), 10, "28x28 grey clothing images (70 000 images)"),
    "cifar10": ("tfds", (32, 32, 3), 10, "32x32 colour images of 10 objects (60 000 images)"),
}
OFFLINE = tuple(n for n, entry in DATASETS.items() if entry[0] != "tfds")


@dataclass(frozen=True)
class DatasetSpec:
    """What a model needs to know about a dataset."""

    name: str
    input_shape: tuple[int, ...]
    num_classes: int
    task: str = "classification"
    class_names: tuple[str, ...] = ()
    scale: float = 1.0  # raw values are divided by this on their way into the model


@dataclass
class Data:
    """A dataset's splits: each a pair of numpy arrays ``(x, y)`` or an unbatched
    ``tf.data.Dataset`` of ``(x, y)``; ``val`` and ``test`` may be None."""

    spec: DatasetSpec
    train: Any
    val: Any = None
    test: Any = None
    notes: list[str] = field(default_factory=list)

    @property
    def streaming(self) -> bool:
        return not isinstance(self.train, tuple)


def dataset_names() -> list[str]:
    return list(DATASETS)


def catalog_spec(name: str) -> DatasetSpec:
    """The spec of dataset ``name`` from the catalog, without loading anything."""
    check_name(name)
    _, input_shape, num_classes, _ = DATASETS[name]
    return DatasetSpec(name, input_shape, num_classes)


def check_name(name: str) -> None:
    """Raise a :class:`LabkitError` with close matches for an unknown dataset name."""
    if name not in DATASETS:
        close = difflib.get_close_matches(name, DATASETS, n=3)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        raise LabkitError(
            f"Unknown dataset {name!r}.{hint} Known: {', '.join(DATASETS)}."
        )


def load(name: str, *, validation_split: float = 0.2, data_dir: str | None = None,
         options: dict | None = None) -> Data:
    """Load dataset ``name`` with a validation split carved from its training data.

    Args:
        name: one of :data:`DATASETS`.
        validation_split: fraction of the training data held out for validation.
        data_dir: TFDS data directory (default: ``$TFDS_DATA_DIR`` or TFDS's own).
        options: generator options of the Playground sets: ``noise`` (0–0.5), ``num_samples``,
            ``seed``.
    """
    check_name(name)
    options = dict(options or {})
    if name in PLAYGROUND_NAMES:
        return _playground(name, validation_split, **options)
    if options:
        raise LabkitError(f"Dataset {name!r} takes no options. Received: {options}")
    if name == "digits":
        return _digits(validation_split)
    if name == "control_charts":
        return _control_charts(validation_split)
    return _tfds(name, validation_split, data_dir)


def _split(x, y, fraction: float, seed: int = SPLIT_SEED):
    """Stratified, seeded split of ``(x, y)`` into the rest and a ``fraction`` part."""
    if fraction == 0:
        return (x, y), None
    from sklearn.model_selection import train_test_split

    x_a, x_b, y_a, y_b = train_test_split(x, y, test_size=fraction, random_state=seed, stratify=y)
    return (x_a, y_a), (x_b, y_b)


def _digits(validation_split: float) -> Data:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = bunch.images.astype("uint8")[..., None]  # (1797, 8, 8, 1), values 0..16
    y = bunch.target.astype("int64")
    rest, test = _split(x, y, 0.2)
    train, val = _split(*rest, validation_split)
    spec = DatasetSpec("digits", (8, 8, 1), 10, class_names=tuple(map(str, range(10))), scale=16.0)
    return Data(spec, train, val, test)


def _control_charts(validation_split: float) -> Data:
    from labkit import series

    x, y = series.control_charts()
    rest, test = _split(x, y, 0.2)
    train, val = _split(*rest, validation_split)
    spec = DatasetSpec("control_charts", (60, 1), 6, task="classification",
                       class_names=series.CONTROL_CHART_CLASSES)
    return Data(spec, train, val, test)


def _playground(name: str, validation_split: float, *, noise: float = 0.0,
                num_samples: int = 500, seed: int = SPLIT_SEED) -> Data:
    from labkit import playground

    if not 0 <= noise <= 0.5:
        raise LabkitError(f"Dataset option `noise` must be in [0, 0.5]. Received: noise={noise}")
    if not isinstance(num_samples, int) or num_samples < 20:
        raise LabkitError(f"Dataset option `num_samples` must be an integer >= 20. "
                          f"Received: num_samples={num_samples}")
    x, y = playground.generate(name, noise=noise, num_samples=num_samples, seed=seed)
    half = len(x) // 2  # the Playground's default ratio: half training, half test
    train, val = _split(x[:half], y[:half], validation_split)
    spec = DatasetSpec(name, (2,), 2, class_names=("orange (-1)", "blue (+1)"))
    return Data(spec, train, val, (x[half:], y[half:]))


def _tfds(name: str, validation_split: float, data_dir: str | None) -> Data:
    import tensorflow_datasets as tfds

    data_dir = data_dir or os.environ.get("TFDS_DATA_DIR")
    builder = tfds.builder(name, data_dir=data_dir)
    percent = round(validation_split * 100)
    if validation_split and not 1 <= percent <= 99:
        raise LabkitError("For TFDS datasets --validation-split must be between 0.01 and 0.99.")
    splits = ["train", "test"] if not percent else \
        [f"train[:{100 - percent}%]", f"train[{100 - percent}%:]", "test"]
    def load_splits(download: bool):
        return tfds.load(name, split=splits, data_dir=data_dir, as_supervised=True,
                         download=download)

    try:
        datasets = load_splits(download=False)
    except Exception as not_on_disk:  # TFDS raises several types for "not prepared"
        if not network_reachable():
            raise LabkitError(_not_prepared(name, builder.data_dir, "no network")) from None
        try:
            datasets = load_splits(download=True)
        except Exception as err:
            raise LabkitError(_not_prepared(name, builder.data_dir, err)) from not_on_disk
    info = builder.info
    features = info.features
    spec = DatasetSpec(name, tuple(features["image"].shape), features["label"].num_classes,
                       class_names=tuple(features["label"].names), scale=255.0)
    train, *rest = datasets
    val, test = rest if percent else (None, rest[0])
    return Data(spec, train, val, test)


def network_reachable(host: str = "storage.googleapis.com", timeout: float = 3.0) -> bool:
    """Whether TFDS's download host answers; checked first so an offline machine fails in
    seconds instead of minutes of download retries."""
    import socket

    try:
        socket.create_connection((host, 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def _not_prepared(name: str, data_dir: str, err: Exception | str) -> str:
    reason = (str(err).strip().splitlines() or [type(err).__name__])[0][:160]
    return (
        f"Dataset {name!r} is not in {data_dir} and could not be downloaded ({reason}). "
        "On a machine with network run "
        f"`python -m tensorflow_datasets.scripts.download_and_prepare "
        f"--datasets={name} --data_dir=DIR` (or `tfds build {name} --data_dir DIR`), copy DIR here "
        f"and pass --data-dir DIR or set TFDS_DATA_DIR. Offline datasets: {', '.join(OFFLINE)}."
    )


def model_input(x: np.ndarray, spec: DatasetSpec) -> np.ndarray:
    """Raw arrays as the model sees them: float32, divided by the spec's scale."""
    return np.asarray(x, dtype="float32") / np.float32(spec.scale)


def stream(ds, spec: DatasetSpec, batch_size: int, *, shuffle: bool, seed: int | None = None):
    """A batched, scaled, cached and prefetched ``tf.data`` pipeline from an unbatched split."""
    import tensorflow as tf

    scale = tf.constant(spec.scale, tf.float32)
    ds = ds.map(lambda x, y: (tf.cast(x, tf.float32) / scale, y),
                num_parallel_calls=tf.data.AUTOTUNE).cache()
    if shuffle:
        ds = ds.shuffle(10_000, seed=seed, reshuffle_each_iteration=True)
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)
