"""Data augmentation (lecture topic 7): random transformations of the training images only.

``--augment flip,rotation=0.1,zoom=0.2`` becomes a stack of Keras preprocessing layers applied in
the training pipeline (``tf.data``), after scaling to [0, 1]. Validation and test data never pass
through it, and the saved model does not contain it: predictions are made on real images.
"""

from __future__ import annotations

from typing import Any

from labkit import options
from labkit.errors import LabkitError

# name → (default amount, what the amount means). Order is the order layers are applied.
AUGMENTATIONS: dict[str, tuple[Any, str]] = {
    "flip": ("horizontal", "horizontal, vertical or horizontal_and_vertical"),
    "rotation": (0.1, "fraction of a full turn, in (0, 1]"),
    "zoom": (0.1, "fraction of the size to zoom in or out, in (0, 1]"),
    "translation": (0.1, "fraction of the size to shift, in (0, 1]"),
    "contrast": (0.2, "contrast factor range, in (0, 1]"),
    "noise": (0.05, "standard deviation of Gaussian noise on pixels scaled to [0, 1], in (0, 1]"),
}
FLIPS = ("horizontal", "vertical", "horizontal_and_vertical")
IMAGE_ONLY = ("flip", "rotation", "zoom", "translation", "contrast")


def resolve(value: str | dict | None, input_shape: tuple | None = None) -> dict[str, Any]:
    """``"flip,rotation=0.1"`` or a mapping → ``{"flip": "horizontal", "rotation": 0.1}``.

    A bare name takes its default amount. ``input_shape`` (when known) rules out image
    transformations for non-image data.
    """
    if value in (None, "", "none", {}):
        return {}
    if isinstance(value, str):
        try:
            value = options.parse_settings(value)
        except ValueError as err:
            raise LabkitError(f"--augment: {err}. Example: --augment flip,rotation=0.1") from None
    if not isinstance(value, dict):
        raise LabkitError(f"--augment must be a list like flip,rotation=0.1. Received: {value!r}")
    resolved = {}
    for name, amount in value.items():
        if name not in AUGMENTATIONS:
            raise LabkitError(f"--augment has no {name!r}. Known: {', '.join(AUGMENTATIONS)}.")
        default, meaning = AUGMENTATIONS[name]
        amount = default if amount is True else amount
        if amount is False:
            continue
        ok = amount in FLIPS if name == "flip" else (
            not isinstance(amount, bool) and isinstance(amount, (int, float)) and amount > 0
            and amount <= 1)
        if not ok:
            raise LabkitError(f"--augment {name}: the amount is the {meaning}. "
                              f"Received: {amount!r}")
        resolved[name] = amount
    if input_shape is not None and len(input_shape) != 3:
        images_only = [n for n in resolved if n in IMAGE_ONLY]
        if images_only:
            raise LabkitError(f"--augment {', '.join(images_only)} needs image data (height, "
                              f"width, channels); this dataset's inputs have shape {input_shape}. "
                              "Only noise applies to it.")
    return {name: resolved[name] for name in AUGMENTATIONS if name in resolved}


def layers(augment: dict[str, Any], seed: int | None = None) -> list:
    """The Keras preprocessing layers for a resolved augmentation, in application order."""
    import keras

    made = {
        "flip": lambda a: keras.layers.RandomFlip(a, seed=seed),
        "rotation": lambda a: keras.layers.RandomRotation(a, seed=seed),
        "zoom": lambda a: keras.layers.RandomZoom(a, seed=seed),
        "translation": lambda a: keras.layers.RandomTranslation(a, a, seed=seed),
        "contrast": lambda a: keras.layers.RandomContrast(a, value_range=(0, 1), seed=seed),
        "noise": lambda a: keras.layers.GaussianNoise(a, seed=seed),
    }
    return [made[name](amount) for name, amount in augment.items()]


def apply(ds, augment: dict[str, Any], seed: int | None = None):
    """Map a batched ``tf.data`` training pipeline of ``(x, y[, w])`` through the augmentation."""
    import tensorflow as tf

    stack = layers(augment, seed)

    def transform(x, *rest):
        for layer in stack:
            x = layer(x, training=True)
        return (x, *rest)

    return ds.map(transform, num_parallel_calls=tf.data.AUTOTUNE)
