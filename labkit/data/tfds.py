"""Datasets from tensorflow-datasets (``mnist``, ``fashion_mnist``, ``cifar10``, …), streamed.

Offline is the normal case: a dataset that is not prepared in the data directory fails in
seconds with a message that says how to prepare it elsewhere, instead of minutes of retries.
"""

from __future__ import annotations

import os

from labkit.data.base import Data, DatasetSpec
from labkit.errors import LabkitError


def load(name: str, validation_split: float, *, data_dir: str | None = None,
         offline_names: tuple[str, ...] = ()) -> Data:
    """TFDS dataset ``name`` as unbatched ``tf.data`` splits of ``(uint8 image, label)``;
    validation is the last ``validation_split`` of TFDS's ``train`` split.

    Args:
        data_dir: TFDS data directory (default: ``$TFDS_DATA_DIR`` or TFDS's own).
        offline_names: datasets that need no download, named in the not-prepared message.
    """
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
            raise LabkitError(not_prepared(name, builder.data_dir, "no network",
                                           offline_names)) from None
        try:
            datasets = load_splits(download=True)
        except Exception as err:
            raise LabkitError(not_prepared(name, builder.data_dir, err,
                                           offline_names)) from not_on_disk
    features = builder.info.features
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
