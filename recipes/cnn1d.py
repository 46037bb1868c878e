"""1-D convolutional networks for sequences (the lecture's time-series grid)."""

from __future__ import annotations

from labkit._lazy import lazy_import
from labkit.registry import recipe
from recipes._common import (
    LayerOptions,
    as_list,
    check_choice,
    check_common,
    check_positive_ints,
    check_rates,
    conv_block,
    dense_head,
    per_layer,
)

keras = lazy_import("keras")


@recipe("cnn1d", summary="1-D CNN for sequences: [conv1d → pool] blocks → global pool → softmax",
        topic=13, detail="1-D grids: time series", inputs="sequence")
def build(input_shape, num_classes, task="classification", *,
          filters=(32, 64), kernel_size=5, padding="same",
          pooling="max", pool_size=2, dense_units=(), dropout=0.0, activation="relu",
          batch_norm=False, l1=0.0, l2=0.0, kernel_initializer="glorot_uniform",
          bias_initializer="zeros"):
    """1-D convolutional network: conv blocks along time, global average pooling, softmax.

    Reference: lecture topic 13 (convolution for 1-D grid data such as time series).

    Args:
        input_shape: ``(steps, channels)`` of one sequence.
        num_classes: number of output classes (>= 2).
        filters: filters per conv layer. Default ``(32, 64)``.
        kernel_size: window length, one value or one per layer. Default ``5``.
        padding: ``"valid"`` or ``"same"``, one value or one per layer. Default ``"same"``.
        pooling: ``"max"``, ``"average"`` or ``"none"`` after each conv layer. Default ``"max"``.
        pool_size: pooling window, one value or one per layer. Default ``2``.
        dense_units, dropout, activation, batch_norm, l1, l2, kernel_initializer,
            bias_initializer: as in ``cnn``.

    Returns:
        An uncompiled ``keras.Model``: ``block{i}_conv`` … ``global_pool``, ``predictions``.

    R keras:
        keras_model_sequential() %>%
          layer_conv_1d(filters = 32, kernel_size = 5, activation = "relu",
                        input_shape = c(60, 1)) %>%
          layer_max_pooling_1d(pool_size = 2) %>%
          layer_conv_1d(filters = 64, kernel_size = 5, activation = "relu") %>%
          layer_global_average_pooling_1d() %>%
          layer_dense(units = 6, activation = "softmax")

    Example:
        >>> model = build((60, 1), 6, filters=[16, 32, 64])
    """
    filters = as_list(filters)
    check_positive_ints("filters", filters)
    n = len(filters)
    kernels = per_layer("kernel_size", kernel_size, n)
    check_positive_ints("kernel_size", kernels)
    padding = per_layer("padding", padding, n)
    pooling = per_layer("pooling", pooling, n)
    pool_size = per_layer("pool_size", pool_size, n)
    check_positive_ints("pool_size", pool_size)
    for p, q in zip(padding, pooling, strict=True):
        check_choice("padding", p, ("valid", "same"))
        check_choice("pooling", q, ("max", "average", "none"))
    dense_units = as_list(dense_units)
    check_positive_ints("dense_units", dense_units, allow_empty=True)
    check_common(num_classes=num_classes, activation=activation, batch_norm=batch_norm,
                 task=task)
    dropout = per_layer("dropout", dropout, len(dense_units) + 1)
    check_rates("dropout", dropout)
    steps = input_shape[0]
    for i in range(n):
        steps = steps if padding[i] == "same" else steps - kernels[i] + 1
        steps = steps // pool_size[i] if pooling[i] != "none" else steps
        if steps < 1:
            raise ValueError(f"The sequence ({input_shape[0]} steps) is too short for these "
                             f"layers: it vanishes at block{i + 1}. Use padding='same', fewer "
                             "layers or smaller kernel_size / pool_size.")
    options = LayerOptions(n + len(dense_units) + 1, l1=l1, l2=l2,
                           kernel_initializer=kernel_initializer, bias_initializer=bias_initializer)

    inputs = keras.Input(shape=tuple(input_shape), name="inputs")
    x = inputs
    for i in range(n):
        block = f"block{i + 1}"
        conv = keras.layers.Conv1D(filters[i], kernels[i], padding=padding[i],
                                   name=f"{block}_conv", **options.kwargs())
        x = conv_block(x, block, conv, batch_norm=batch_norm, activation=activation,
                       pooling=pooling[i], pool_size=pool_size[i], dims=1)
    x = keras.layers.GlobalAveragePooling1D(name="global_pool")(x)
    outputs = dense_head(x, num_classes, dense_units, dropout, activation, batch_norm, options,
                         task)
    return keras.Model(inputs, outputs, name="cnn1d")
