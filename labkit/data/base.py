"""What every data source returns: a :class:`DatasetSpec` (what a model needs to know) and the
splits (:class:`Data`), plus the seeded, stratified split they all use."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labkit._lazy import lazy_import

np = lazy_import("numpy")  # imported on first use: listing commands never pay for it

# Splits of the bundled and generated sets are fixed, so runs with different seeds are compared
# on the same validation and test examples.
SPLIT_SEED = 0

FOLDER, CSV, NPZ = "folder", "csv", "npz"  # what a path can name, for datasets and predict


def path_kind(path: str | os.PathLike) -> str | None:
    """What ``path`` names, the one rule for dataset paths and ``labkit predict``'s inputs:
    :data:`FOLDER` (an existing directory), :data:`CSV` or :data:`NPZ` (by suffix, in any
    case); None for anything else (an image file, a glob, a name, a path that does not
    exist)."""
    if Path(path).is_dir():
        return FOLDER
    return {".csv": CSV, ".npz": NPZ}.get(Path(path).suffix.lower())


@dataclass(frozen=True)
class Preprocessing:
    """What happens to raw values on their way into the model: divided by ``scale`` (images),
    then standardised with the training split's per-feature ``mean`` and ``variance`` (CSV
    columns). The training pipeline applies it with :meth:`numpy` / :meth:`tensor`; the saved
    ``model.keras`` starts with the same steps as Keras layers (:meth:`layers`), so it takes raw
    inputs. Both compute, in float32, ``x * (1 / scale)`` and then ``x * (1 / std) - mean / std``
    per feature (``std = sqrt(variance)``, or 1 for a feature that is constant in the training
    split, as scikit-learn's ``StandardScaler`` does: a pixel that is always 0 there must not be
    multiplied by millions where it is not), as two ``Rescaling`` layers do: a
    ``Normalization`` layer would keep its mean and variance as captured tensors, which the
    ONNX converter turns into extra model inputs."""

    scale: float = 1.0
    mean: tuple[float, ...] | None = None
    variance: tuple[float, ...] | None = None

    @property
    def identity(self) -> bool:
        return self.scale == 1 and self.mean is None

    def numpy(self, x) -> np.ndarray:
        x = np.asarray(x, dtype="float32")
        if self.scale != 1:
            x = x * np.float32(1 / self.scale)
        if self.mean is not None:
            factor, offset = self.standardization()
            x = x * np.asarray(factor, "float32") + np.asarray(offset, "float32")
        return x

    def tensor(self, x):
        import tensorflow as tf

        x = tf.cast(x, tf.float32)
        if self.scale != 1:
            x = x * tf.constant(1 / self.scale, tf.float32)
        if self.mean is not None:
            factor, offset = self.standardization()
            x = x * tf.constant(factor, tf.float32) + tf.constant(offset, tf.float32)
        return x

    def standardization(self) -> tuple[list[float], list[float]]:
        """``(factor, offset)`` per feature: ``x * factor + offset`` is ``(x - mean) / std``."""
        std = unit_if_constant(np.sqrt(np.asarray(self.variance, "float64")))
        mean = np.asarray(self.mean, "float64")
        return (1 / std).tolist(), (-mean / std).tolist()

    def layers(self) -> list:
        """The Keras layers that do the same, for a model that takes raw inputs."""
        import keras

        made = []
        if self.scale != 1:
            made.append(keras.layers.Rescaling(1 / self.scale, name="rescaling"))
        if self.mean is not None:
            factor, offset = self.standardization()
            made.append(keras.layers.Rescaling(factor, offset, name="standardization"))
        return made

    def to_dict(self) -> dict:
        return {"scale": self.scale, "mean": self.mean, "variance": self.variance}

    @classmethod
    def from_dict(cls, values: dict) -> Preprocessing:
        mean, variance = values.get("mean"), values.get("variance")
        return cls(float(values.get("scale", 1.0)), tuple(mean) if mean is not None else None,
                   tuple(variance) if variance is not None else None)


@dataclass(frozen=True)
class DatasetSpec:
    """What a model needs to know about a dataset."""

    name: str
    input_shape: tuple[int, ...]
    num_classes: int
    task: str = "classification"  # picks the loss and metrics (labkit.tasks)
    class_names: tuple[str, ...] = ()
    scale: float = 1.0  # raw values are divided by this on their way into the model
    # Per-feature mean and variance of the training split (CSV columns): standardised in the
    # model. Known once the data are loaded, None before.
    mean: tuple[float, ...] | None = None
    variance: tuple[float, ...] | None = None
    feature_names: tuple[str, ...] = ()  # a CSV's feature columns, in the model's order
    # Regression: the training split's per-target mean and standard deviation. Training puts
    # them in the model's output (labkit.training.in_target_units), so it learns standardised
    # targets and answers in the targets' units. None: not regression, or not known (a stream).
    target_mean: tuple[float, ...] | None = None
    target_std: tuple[float, ...] | None = None

    @property
    def preprocessing(self) -> Preprocessing:
        return Preprocessing(self.scale, self.mean, self.variance)


@dataclass
class Data:
    """A dataset's splits: each a pair of numpy arrays ``(x, y)`` or an unbatched
    ``tf.data.Dataset`` of ``(x, y)``; ``val`` and ``test`` may be None."""

    spec: DatasetSpec
    train: Any
    val: Any = None
    test: Any = None
    cached: bool = False  # streams already cached on disk: the pipeline adds no memory cache
    notes: tuple[str, ...] = ()  # what loading skipped or dropped, as `labkit data` shows it

    @property
    def streaming(self) -> bool:
        return not isinstance(self.train, tuple)


def unit_if_constant(std: np.ndarray) -> np.ndarray:
    """Standard deviations with 1 in place of those of constant columns (below 1e-7)."""
    return np.where(std < 1e-7, 1.0, std)


def numbered_classes(spec: DatasetSpec) -> bool:
    """Whether ``spec``'s classes are the numbers 0..k−1 (an integer target, digits), so its
    labels can be read as a quantity (``--task regression``)."""
    return spec.task in ("classification", "binary") and \
        spec.class_names == tuple(map(str, range(len(spec.class_names))))


def as_regression(loaded: Data) -> Data:
    """``loaded``'s integer labels as one regression target (float32, one column per example):
    ``--task regression`` on a dataset whose classes are numbers."""
    import dataclasses

    def targets(part):
        if part is None:
            return None
        if isinstance(part, tuple):
            return part[0], np.asarray(part[1], "float32").reshape(-1, 1)
        import tensorflow as tf

        return part.map(lambda x, y: (x, tf.reshape(tf.cast(y, tf.float32), (1,))))

    spec = dataclasses.replace(loaded.spec, task="regression", num_classes=1, class_names=())
    return dataclasses.replace(loaded, spec=spec, train=targets(loaded.train),
                               val=targets(loaded.val), test=targets(loaded.test))


def with_target_statistics(loaded: Data) -> Data:
    """A regression dataset with its training targets' mean and standard deviation in the spec
    (see :attr:`DatasetSpec.target_mean`); anything else as it is."""
    import dataclasses

    if loaded.spec.task != "regression" or loaded.streaming:
        return loaded
    y = np.asarray(loaded.train[1], "float64").reshape(len(loaded.train[1]), -1)
    std = unit_if_constant(y.std(axis=0))
    spec = dataclasses.replace(loaded.spec, target_mean=tuple(map(float, y.mean(axis=0))),
                               target_std=tuple(map(float, std)))
    return dataclasses.replace(loaded, spec=spec)


def split(x, y, fraction: float, seed: int = SPLIT_SEED, stratify: bool = True):
    """Seeded split of ``(x, y)`` into the rest and a ``fraction`` part (None when ``fraction``
    is 0), stratified by class unless ``stratify`` is False (regression, multi-label)."""
    if fraction == 0:
        return (x, y), None
    from sklearn.model_selection import train_test_split

    x_a, x_b, y_a, y_b = train_test_split(x, y, test_size=fraction, random_state=seed,
                                          stratify=y if stratify else None)
    return (x_a, y_a), (x_b, y_b)


def train_val_test(x, y, validation_split: float, test_fraction: float = 0.2,
                   stratify: bool = True):
    """The fixed test part first, then validation carved from the rest: ``(train, val, test)``."""
    rest, test = split(x, y, test_fraction, stratify=stratify)
    train, val = split(*rest, validation_split, stratify=stratify)
    return train, val, test
