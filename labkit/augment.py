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
# How rotation, zoom and translation fill the pixels they uncover (Keras's ``fill_mode``):
# "constant" fills with black (digits on a black ground), "reflect" (Keras's default) mirrors
# the image, "nearest" repeats the edge (R's image_data_generator default), "wrap" tiles it.
FILLS = ("reflect", "constant", "nearest", "wrap")
FILLED = ("rotation", "zoom", "translation")


def resolve(value: str | dict | None, input_shape: tuple | None = None) -> dict[str, Any]:
    """``"flip,rotation=0.1"`` or a mapping → ``{"flip": "horizontal", "rotation": 0.1}``.

    A bare name takes its default amount. ``fill=constant|reflect|nearest|wrap`` says how
    rotation, zoom and translation fill the pixels they uncover (default ``reflect``, Keras's).
    ``input_shape`` (when known) rules out image transformations for non-image data.
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
    value = dict(value)
    fill = value.pop("fill", None)
    for name, amount in value.items():
        if name not in AUGMENTATIONS:
            raise LabkitError(f"--augment has no {name!r}. Known: {', '.join(AUGMENTATIONS)} "
                              f"(and fill=).")
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
    ordered = {name: resolved[name] for name in AUGMENTATIONS if name in resolved}
    if fill is not None:
        if fill not in FILLS:
            raise LabkitError(f"--augment fill: how uncovered pixels are filled, one of "
                              f"{', '.join(FILLS)}. Received: {fill!r}")
        if not any(name in FILLED for name in ordered):
            raise LabkitError(f"--augment fill applies to {', '.join(FILLED)}; none is given.")
        ordered["fill"] = fill
    return ordered


def layers(augment: dict[str, Any], seed: int | None = None) -> list:
    """The Keras preprocessing layers for a resolved augmentation, in application order."""
    import keras

    fill = augment.get("fill", "reflect")
    made = {
        "flip": lambda a: keras.layers.RandomFlip(a, seed=seed),
        "rotation": lambda a: keras.layers.RandomRotation(a, fill_mode=fill, seed=seed),
        "zoom": lambda a: keras.layers.RandomZoom(a, fill_mode=fill, seed=seed),
        "translation": lambda a: keras.layers.RandomTranslation(a, a, fill_mode=fill,
                                                                seed=seed),
        "contrast": lambda a: keras.layers.RandomContrast(a, value_range=(0, 1), seed=seed),
        "noise": lambda a: keras.layers.GaussianNoise(a, seed=seed),
    }
    return [made[name](amount) for name, amount in augment.items() if name != "fill"]


def apply(ds, augment: dict[str, Any], seed: int | None = None):
    """Map a batched ``tf.data`` training pipeline of ``(x, y[, w])`` through the augmentation."""
    import tensorflow as tf

    stack = layers(augment, seed)

    def transform(x, *rest):
        for layer in stack:
            x = layer(x, training=True)
        return (x, *rest)

    return ds.map(transform, num_parallel_calls=tf.data.AUTOTUNE)
