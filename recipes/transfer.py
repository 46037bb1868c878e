"""Pretrained weights as start values: a labkit run's trained model with a new head."""

from __future__ import annotations

import os

from labkit._lazy import lazy_import
from labkit.registry import recipe
from labkit.runs import unwrap
from recipes._common import as_list, check_positive_ints, check_task, output_layer

keras = lazy_import("keras")


@recipe("transfer",
        summary="A trained labkit run as start values; new head, freeze all/none/up to a layer",
        topic=12,
        detail="transfer learning: pretrained weights as start values")
def build(input_shape, num_classes, task="classification", *,
          base=None, freeze="all", dense_units=()):
    """Reuse a trained model on another dataset: keep its layers, replace its ``predictions``.

    Reference: lecture topic 12 ("pretrained networks as start values, good on small data").

    Args:
        input_shape: must equal the base model's input shape.
        num_classes: classes of the new task; the new ``predictions`` layer has this many.
        base: a run directory (``runs/<name>``) or a ``.keras`` file. Required.
        freeze: ``"all"`` (train only the new head), ``"none"`` (fine-tune everything) or a layer
            name: that layer and every one before it stay frozen (R's ``freeze_weights(to = )``).
        dense_units: new hidden dense layers before the output. Default ``()``.

    Returns:
        An uncompiled ``keras.Model`` with the base's layers up to its ``predictions`` and a new
        head ``transfer_fc{i}`` → ``predictions``.

    R keras:
        base <- load_model_hdf5("base.h5")
        features <- get_layer(base, index = -2)$output
        output <- features %>% layer_dense(units = 5, activation = "softmax")
        model <- keras_model(base$input, output)
        freeze_weights(model, to = "fc1")

    Example:
        >>> model = build((8, 8, 1), 5, base="runs/cnn-digits-20261126", freeze="block2_conv")
    """
    if not base:
        raise ValueError("`base` must name a labkit run directory or a .keras file, e.g. "
                         "--set base=runs/cnn-digits-20261126-120000. Received: base=None")
    path = os.path.join(base, "model.keras") if os.path.isdir(str(base)) else str(base)
    if not os.path.isfile(path):
        raise ValueError(f"`base` has no trained model ({path} is missing). "
                         f"Received: base={base!r}")
    dense_units = as_list(dense_units)
    check_positive_ints("dense_units", dense_units, allow_empty=True)
    check_task(task, num_classes)
    from labkit.errors import LabkitError
    from labkit.trust import load_keras

    try:  # a run's model.keras: the bare trained model behind its Rescaling; the new data are
        old = unwrap(load_keras(path, compile=False))  # preprocessed by their own pipeline
    except LabkitError as err:  # the recipe's errors are ValueErrors, as for every bad argument
        raise ValueError(f"`base`: {err}") from None
    if tuple(old.input.shape[1:]) != tuple(input_shape):
        raise ValueError(f"The base model takes inputs {tuple(old.input.shape[1:])}, the new data "
                         f"{tuple(input_shape)}. Transfer needs the same input shape.")
    names = [layer.name for layer in old.layers]
    if freeze not in ("all", "none") and freeze not in names:
        raise ValueError("`freeze` must be 'all', 'none' or a layer of the base "
                         f"({', '.join(names)}). "
                         f"Received: freeze={freeze!r}")
    frozen = True if freeze == "all" else False if freeze == "none" else None
    for layer in old.layers:
        layer.trainable = not frozen if frozen is not None else False
        if frozen is None and layer.name == freeze:
            frozen = False  # layers after the named one train
    x = old.get_layer("predictions").input
    for i, units in enumerate(dense_units, start=1):
        x = keras.layers.Dense(units, activation="relu", name=f"transfer_fc{i}")(x)
    outputs = output_layer(x, num_classes, task)
    return keras.Model(old.input, outputs, name="transfer")
