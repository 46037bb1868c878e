"""The ``control_charts`` dataset: generated time series of the six synthetic control-chart
patterns, for the 1-D CNN."""

from __future__ import annotations

from labkit._lazy import lazy_import
from labkit.data.base import Data, DatasetSpec, train_val_test

np = lazy_import("numpy")  # imported on first use: listing commands never pay for it

CONTROL_CHART_CLASSES = ("normal", "cyclic", "increasing trend", "decreasing trend",
                         "upward shift", "downward shift")


def generate(per_class: int = 200, length: int = 60, seed: int = 0):
    """The six synthetic control-chart patterns (Alcock & Manolopoulos, UCI): series of ``length``
    steps around the mean 30 with noise ±3·2, plus a cycle, a trend or a shift.

    Returns ``x`` ``(6 * per_class, length, 1)`` float32 — centred on 30 and divided by 10 — and
    ``y`` in 0..5 (see :data:`CONTROL_CHART_CLASSES`).
    """
    rng = np.random.default_rng(seed)
    t = np.arange(length, dtype="float64")
    series, labels = [], []
    for label in range(6):
        for _ in range(per_class):
            y = 30 + rng.uniform(-3, 3, length) * 2
            if label == 1:
                y += rng.uniform(10, 15) * np.sin(2 * np.pi * t / rng.uniform(10, 15))
            elif label in (2, 3):
                y += (1 if label == 2 else -1) * rng.uniform(0.2, 0.5) * t
            elif label in (4, 5):
                start = rng.uniform(length / 3, 2 * length / 3)
                y += (1 if label == 4 else -1) * rng.uniform(7.5, 20) * (t >= start)
            series.append(y)
            labels.append(label)
    x = ((np.array(series) - 30) / 10).astype("float32")[..., None]
    order = rng.permutation(len(x))
    return x[order], np.array(labels, dtype="int64")[order]


def load(name: str, validation_split: float) -> Data:
    """1 200 series of 60 steps, 6 classes; test 20 %, validation carved from the rest."""
    x, y = generate()
    spec = DatasetSpec(name, (60, 1), 6, class_names=CONTROL_CHART_CLASSES)
    return Data(spec, *train_val_test(x, y, validation_split))
