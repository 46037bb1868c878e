"""Datasets from tensorflow-datasets, streamed: the catalog's ``mnist``, ``fashion_mnist``,
``cifar10``, and any supervised image dataset of fixed size as ``--dataset tfds:NAME``.

Offline is the normal case: a dataset that is not prepared in the data directory fails in
seconds with a message that says how to prepare it elsewhere, instead of minutes of retries.
"""

from __future__ import annotations

import os

from labkit._startup import import_tensorflow
from labkit.data import images
from labkit.data.base import Data, DatasetSpec
from labkit.errors import LabkitError
from labkit.options import did_you_mean

PREFIX = "tfds:"  # --dataset tfds:NAME: any dataset TFDS knows
OPTIONS = ("image_size",)  # resize every image to HEIGHTxWIDTH (needed when sizes vary)


def is_tfds_name(name: str) -> bool:
    return name.startswith(PREFIX)


def builder_for(name: str, data_dir: str | None = None):
    """The TFDS builder of ``name`` (``mnist`` or ``tfds:NAME``); an unknown name is a
    LabkitError with close matches. Reading its info needs no data on disk."""
    import_tensorflow()  # tensorflow_datasets imports TensorFlow: quietly, before it does
    import tensorflow_datasets as tfds

    tfds_name = name.removeprefix(PREFIX)
    try:
        return tfds.builder(tfds_name, data_dir=data_dir or os.environ.get("TFDS_DATA_DIR"))
    except tfds.core.registered.DatasetNotFoundError:
        raise LabkitError(f"TFDS has no dataset {tfds_name!r}."
                          f"{did_you_mean(tfds_name, tfds.list_builders())}") from None


def prepared(name: str, data_dir: str | None = None) -> bool:
    """Whether TFDS dataset ``name`` (``mnist`` or ``tfds:NAME``) is prepared in the data
    directory, so it loads without a download: how a notebook picks MNIST over the bundled
    digits when the student has it."""
    return bool(builder_for(name, data_dir).is_prepared())


def spec_of(name: str, builder, task: str | None = None, image_size=None) -> DatasetSpec:
    """The spec of a supervised image dataset from its TFDS info. ``task`` None: binary for two
    classes (as the R lab's cats vs dogs), else classification. ``image_size`` (``"150x150"``)
    resizes the images, as it does for an image folder."""
    keys = builder.info.supervised_keys
    if not keys or len(keys) != 2 or not all(isinstance(k, str) for k in keys):
        raise LabkitError(f"TFDS dataset {builder.name!r} has no (input, label) pair to train on.")
    features = builder.info.features
    inputs, label = features[keys[0]], features[keys[1]]
    shape = tuple(getattr(inputs, "shape", ()))
    if image_size is not None and len(shape) == 3 and shape[-1] is not None:
        shape = (*images.parse_image_size(image_size), shape[-1])
    if not shape or None in shape:
        raise LabkitError(f"TFDS dataset {builder.name!r} has images of varying size "
                          f"{shape}; pass --image-size HEIGHTxWIDTH, e.g. --image-size 150x150.")
    if not hasattr(label, "num_classes"):
        raise LabkitError(f"TFDS dataset {builder.name!r} has no class labels ({keys[1]}).")
    num_classes = int(label.num_classes)
    task = task or ("binary" if num_classes == 2 else "classification")
    scale = 255.0 if "uint8" in str(getattr(inputs, "dtype", "")) else 1.0
    return DatasetSpec(name, shape, num_classes, task=task, class_names=tuple(label.names),
                       scale=scale)


def load(name: str, validation_split: float, *, data_dir: str | None = None,
         offline_names: tuple[str, ...] = (), task: str | None = None,
         image_size=None) -> Data:
    """TFDS dataset ``name`` (``mnist`` or ``tfds:NAME``) as unbatched ``tf.data`` splits of
    ``(uint8 image, label)``; validation is the last ``validation_split`` of TFDS's ``train``
    split, and a dataset without a ``test`` split keeps the last 20 % of ``train`` for test.

    Args:
        data_dir: TFDS data directory (default: ``$TFDS_DATA_DIR`` or TFDS's own).
        offline_names: datasets that need no download, named in the not-prepared message.
        task: the task of the spec; None: see :func:`spec_of`.
        image_size: ``"HEIGHTxWIDTH"``: every image resized as an image folder's are.
    """
    import tensorflow_datasets as tfds

    builder = builder_for(name, data_dir)
    spec = spec_of(name, builder, task, image_size)
    percent = round(validation_split * 100)
    if validation_split and not 1 <= percent <= 99:
        raise LabkitError("For TFDS datasets --validation-split must be between 0.01 and 0.99.")
    has_test = "test" in builder.info.splits
    end = 100 if has_test else 80  # where the training part of `train` ends
    cut = round(end * (1 - percent / 100))
    splits = [f"train[:{end}%]" if end < 100 else "train"] if not percent else \
        [f"train[:{cut}%]", f"train[{cut}%:{end}%]"]
    splits.append("test" if has_test else "train[80%:]")

    def load_splits(download: bool):
        return tfds.load(builder.name, split=splits, data_dir=builder.data_dir_root,
                         as_supervised=True, download=download)

    try:
        datasets = load_splits(download=False)
    except Exception as not_on_disk:  # TFDS raises several types for "not prepared"
        if not network_reachable():
            raise LabkitError(not_prepared(builder.name, builder.data_dir, "no network",
                                           offline_names)) from None
        try:
            datasets = load_splits(download=True)
        except Exception as err:
            raise LabkitError(not_prepared(builder.name, builder.data_dir, err,
                                           offline_names)) from not_on_disk
    if image_size is not None:
        size = images.parse_image_size(image_size)
        datasets = [ds.map(lambda x, y: (images.resize(x, size), y)) for ds in datasets]
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


def not_prepared(name: str, data_dir: str, err: Exception | str,
                 offline_names: tuple[str, ...] = ()) -> str:
    """The one-line message for a dataset that is neither on disk nor downloadable."""
    reason = (str(err).strip().splitlines() or [type(err).__name__])[0][:160]
    return (
        f"Dataset {name!r} is not in {data_dir} and could not be downloaded ({reason}). "
        "On a machine with network run "
        f"`python -m tensorflow_datasets.scripts.download_and_prepare "
        f"--datasets={name} --data_dir=DIR` (or `tfds build {name} --data_dir DIR`), copy DIR here "
        "and pass --data-dir DIR or set TFDS_DATA_DIR. "
        f"Offline datasets: {', '.join(offline_names)}."
    )
