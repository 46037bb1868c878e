"""Datasets from a NumPy ``.npz`` file: ``--dataset data.npz``.

Keys ``x_train, y_train, x_test, y_test`` (what ``keras.datasets.mnist.load_data()`` returns,
saved with ``np.savez``) or ``x, y`` (then a fixed 20 % becomes the test split). Inputs: images
``(n, h, w, c)``, grey images ``(n, h, w)`` when uint8 (uint8 images are scaled by 255 on their
way into the model), sequences ``(n, t, c)`` (any other 3-D array) or feature rows
``(n, features)``. The task follows the labels:

- integers 0..k−1 → ``binary`` for two classes (the R lab's default), else ``classification``;
- rows of 0/1 (``(n, labels)``) → ``multilabel``;
- floats → ``regression``, one target or ``(n, targets)``.
"""

from __future__ import annotations

import functools
import os
import zipfile
from pathlib import Path

from labkit._lazy import lazy_import
from labkit.data.base import Data, DatasetSpec, split, train_val_test
from labkit.errors import LabkitError

np = lazy_import("numpy")  # imported on first use: listing commands never pay for it

OPTIONS = ()  # an .npz takes no dataset options
LAYOUTS = (("x_train", "y_train", "x_test", "y_test"), ("x", "y"))


def read(path: str | Path) -> dict[str, np.ndarray]:
    """The arrays of ``path`` in one of :data:`LAYOUTS`, checked; a bad file is a LabkitError.
    Validating a config and then training read the file once (cached while it is unchanged)."""
    path = Path(path)
    if not path.is_file():
        raise LabkitError(f"Dataset file {str(path)!r} does not exist.")
    stat = os.stat(path)
    return _read(str(path.resolve()), stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=2)
def _read(path: str, mtime_ns: int, size: int) -> dict[str, np.ndarray]:
    path = Path(path)
    if not zipfile.is_zipfile(path):
        raise LabkitError(f"{path} is not an .npz archive (np.savez writes one).")
    from labkit.trust import load_npz

    arrays = load_npz(path)
    layout = next((keys for keys in LAYOUTS if set(keys) <= set(arrays)), None)
    if layout is None:
        raise LabkitError(f"{path} holds {', '.join(sorted(arrays)) or 'no arrays'}; a dataset "
                          "needs x_train, y_train, x_test, y_test (keras.datasets layout) or x, y.")
    for key, values in arrays.items():
        if values.dtype.kind == "f" and np.isnan(values).any():
            raise LabkitError(f"{path}: {key} has {int(np.isnan(values).sum())} missing (NaN) "
                              "values; remove or fill them first.")
    for x_key, y_key in zip(layout[::2], layout[1::2], strict=True):
        if len(arrays[x_key]) != len(arrays[y_key]):
            raise LabkitError(f"{path}: {x_key} has {len(arrays[x_key])} rows, {y_key} "
                              f"{len(arrays[y_key])}; they must match.")
        if len(arrays[x_key]) == 0:
            raise LabkitError(f"{path}: {x_key} is empty.")
    return {key: arrays[key] for key in layout}


def infer_task(y: np.ndarray) -> tuple[str, int]:
    """``(task, num_classes)`` from labels: see the module docstring."""
    if y.dtype.kind not in "biuf" or y.ndim > 2:
        raise LabkitError(f"Labels must be numbers in a (n,) or (n, k) array. Received dtype "
                          f"{y.dtype}, shape {y.shape}.")
    integral = y.dtype.kind in "biu"
    if y.ndim == 2 and y.shape[1] > 1:
        if integral and np.isin(y, (0, 1)).all():
            return "multilabel", y.shape[1]
        return "regression", y.shape[1]
    if not integral:
        return "regression", 1
    y = y.reshape(-1).astype("int64")
    if y.min() < 0:
        raise LabkitError(f"Class labels must be 0..k-1. Received a label {int(y.min())}.")
    classes = int(y.max()) + 1
    return ("binary" if classes <= 2 else "classification"), max(classes, 2)


def spec_of(name: str, arrays: dict[str, np.ndarray]) -> DatasetSpec:
    x, y = arrays.get("x_train", arrays.get("x")), arrays.get("y_train", arrays.get("y"))
    task, num_classes = infer_task(y)
    shape = tuple(int(d) for d in x.shape[1:])
    if len(shape) == 2 and x.dtype == np.uint8:  # grey images without a channel axis
        shape = (*shape, 1)
    scale = 255.0 if x.dtype == np.uint8 else 1.0
    names = tuple(map(str, range(num_classes))) if task in ("binary", "classification") else ()
    return DatasetSpec(name, shape, num_classes, task=task, class_names=names, scale=scale)


def spec(name: str, options: dict) -> DatasetSpec:
    return spec_of(name, read(name))


def load(name: str, validation_split: float, **options) -> Data:
    """The splits of ``name``, a path to an ``.npz``; validation carved from training data
    (stratified for class labels)."""
    arrays = read(name)
    spec = spec_of(name, arrays)

    def shaped(x, y):
        x = x.reshape((len(x), *spec.input_shape))
        y = y.astype("float32") if spec.task in ("regression", "multilabel") else \
            y.reshape(-1).astype("int64")
        return x, y

    stratify = spec.task in ("binary", "classification")
    if "x" in arrays:
        train, val, test = train_val_test(*shaped(arrays["x"], arrays["y"]), validation_split,
                                          stratify=stratify)
    else:
        train, val = split(*shaped(arrays["x_train"], arrays["y_train"]), validation_split,
                           stratify=stratify)
        test = shaped(arrays["x_test"], arrays["y_test"])
    return Data(spec, train, val, test)
