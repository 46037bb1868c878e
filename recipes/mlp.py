"""Dense (fully connected) networks — the course's first Keras model."""

from __future__ import annotations

from labkit._lazy import lazy_import
from labkit.registry import recipe
from recipes._common import (
    LayerOptions,
    as_list,
    check_common,
    check_positive_ints,
    check_rates,
    dense_head,
    per_layer,
)

keras = lazy_import("keras")


@recipe("mlp", summary="Dense net: flatten → dense layers → softmax",
        topic=(1, 5), detail="the course's MNIST dense net")
def build(input_shape, num_classes, task="classification", *,
          units=(512,), activation="relu", dropout=0.0,
          batch_norm=False, l1=0.0, l2=0.0, kernel_initializer="glorot_uniform",
          bias_initializer="zeros"):
    """Dense network: flatten the input, hidden dense layers, a softmax output.

    Reference: lecture topics 1 and 5; the course lab's MNIST model.

    Args:
        input_shape: shape of one example, e.g. ``(28, 28, 1)`` or ``(2,)``.
        num_classes: number of output classes (>= 2).
        units: width of each hidden layer, one value per layer. Default ``(512,)``, the lab's.
        activation: activation of the hidden layers. Default ``"relu"``.
        dropout: rate before each dense layer (hidden and output): one value, or one per dense
            layer (``len(units) + 1``). Default ``0.0``.
        batch_norm: batch normalization after each hidden dense layer. Default ``False``.
        l1, l2: norm-penalty α on every kernel, one value or one per dense layer. Default ``0``.
        kernel_initializer: start values of the kernels, e.g. ``"he_normal"`` or
            ``"random_normal(stddev=0.05)"``. Default ``"glorot_uniform"`` (Keras's).
        bias_initializer: start values of the biases, e.g. ``"constant(0.1)"``. Default
            ``"zeros"``.

    Returns:
        An uncompiled ``keras.Model`` with layers ``fc1..fcN`` and ``predictions``.

    R keras:
        keras_model_sequential() %>%
          layer_dense(units = 512, activation = "relu", input_shape = c(28 * 28)) %>%
          layer_dense(units = 10, activation = "softmax")

    Example:
        >>> model = build((28, 28, 1), 10, units=[256, 128], dropout=0.2)
    """
    units = as_list(units)
    check_positive_ints("units", units, allow_empty=True)
    check_common(num_classes=num_classes, activation=activation, batch_norm=batch_norm,
                 task=task)
    dropout = per_layer("dropout", dropout, len(units) + 1)
    check_rates("dropout", dropout)
    options = LayerOptions(len(units) + 1, l1=l1, l2=l2, kernel_initializer=kernel_initializer,
                           bias_initializer=bias_initializer)

    inputs = keras.Input(shape=tuple(input_shape), name="inputs")
    x = keras.layers.Flatten(name="flatten")(inputs) if len(input_shape) > 1 else inputs
    outputs = dense_head(x, num_classes, units, dropout, activation, batch_norm, options, task)
    return keras.Model(inputs, outputs, name="mlp")
