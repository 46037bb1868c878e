"""scikit-learn's bundled 8×8 handwritten digits: 1 797 images, no network needed."""

from __future__ import annotations

from labkit.data.base import Data, DatasetSpec, train_val_test


def load(name: str, validation_split: float) -> Data:
    """``digits``: uint8 images ``(n, 8, 8, 1)`` with values 0..16 (scaled by 16 in the model),
    test 20 %, validation carved from the rest."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = bunch.images.astype("uint8")[..., None]  # (1797, 8, 8, 1), values 0..16
    y = bunch.target.astype("int64")
    spec = DatasetSpec(name, (8, 8, 1), 10, class_names=tuple(map(str, range(10))), scale=16.0)
    return Data(spec, *train_val_test(x, y, validation_split))
