"""What every data source returns: a :class:`DatasetSpec` (what a model needs to know) and the
splits (:class:`Data`), plus the seeded, stratified split they all use."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# Splits of the bundled and generated sets are fixed, so runs with different seeds are compared
# on the same validation and test examples.
SPLIT_SEED = 0


@dataclass(frozen=True)
class DatasetSpec:
    """What a model needs to know about a dataset."""

    name: str
    input_shape: tuple[int, ...]
    num_classes: int
    task: str = "classification"  # picks the loss and metrics (labkit.tasks)
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

    @property
    def streaming(self) -> bool:
        return not isinstance(self.train, tuple)


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
