"""2-D convolutional networks in the style of the lecture's ``layer_conv_2d``."""

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

POOLING = ("max", "average", "none")
PADDING = ("valid", "same")


@recipe("cnn", summary="2-D CNN: [conv → pool] blocks → dense layers → softmax",
        topic=(19, 20, 21), inputs="image")
def build(input_shape, num_classes, task="classification", *,
          filters=(32, 64), kernel_size=3, padding="same",
          strides=1, pooling="max", pool_size=2, dense_units=(), dropout=0.5, activation="relu",
          batch_norm=False, l1=0.0, l2=0.0, kernel_initializer="glorot_uniform",
          bias_initializer="zeros"):
    """Convolutional network: conv blocks (conv → activation → pooling), flatten, dense, softmax.

    Reference: lecture topics 19–21 and 13 (CNNs for 2-D grids). The defaults are the course's
    MNIST convnet: conv 32 → max pool → conv 64 → max pool → flatten → dropout 0.5 → softmax.
    ``padding="same"`` is the default so the 8×8 digits fit too; ``padding="valid"`` is R's.

    Args:
        input_shape: ``(height, width, channels)`` of one image.
        num_classes: number of output classes (>= 2).
        filters: filters of each conv layer, one value per layer. Default ``(32, 64)``.
        kernel_size: an int, a pair ``(height, width)`` like R's ``c(3, 3)``, or one entry per
            conv layer (any other list length, or nested pairs). Default ``3``.
        padding: ``"valid"`` (no zero padding; each layer shrinks) or ``"same"``; one value or one
            per conv layer. Default ``"same"``.
        strides: conv stride, one value or one per conv layer. Default ``1``.
        pooling: ``"max"``, ``"average"`` or ``"none"`` after each conv layer; one value or one per
            conv layer. Default ``"max"``.
        pool_size: pooling window (and stride), one value or one per conv layer. Default ``2``.
        dense_units: widths of hidden dense layers after flattening. Default ``()``.
        dropout: rate before each dense layer (hidden and output), one value or one per dense
            layer. Default ``0.5``.
        activation: activation of conv and hidden dense layers. Default ``"relu"``.
        batch_norm: batch normalization after each conv and hidden dense layer. Default ``False``.
        l1, l2: norm-penalty α on every kernel, one value or one per weighted layer (conv
            layers, hidden dense layers, output). Default ``0``.
        kernel_initializer, bias_initializer: start values, e.g. ``"he_normal"``,
            ``"random_uniform(minval=-0.05, maxval=0.05)"``, ``"constant(0.1)"``.

    Returns:
        An uncompiled ``keras.Model`` with layers ``block{i}_conv``, ``block{i}_pool``, ``fc{i}``
        and ``predictions``.

    R keras (the lab's model: ``filters=[32, 64, 64], pooling=["max", "max", "none"],
    dense_units=[64], dropout=0, padding="valid"``):
        keras_model_sequential() %>%
          layer_conv_2d(filters = 32, kernel_size = c(3, 3), activation = "relu",
                        input_shape = c(28, 28, 1)) %>%
          layer_max_pooling_2d(pool_size = c(2, 2)) %>%
          layer_conv_2d(filters = 64, kernel_size = c(3, 3), activation = "relu") %>%
          layer_max_pooling_2d(pool_size = c(2, 2)) %>%
          layer_conv_2d(filters = 64, kernel_size = c(3, 3), activation = "relu") %>%
          layer_flatten() %>%
          layer_dense(units = 64, activation = "relu") %>%
          layer_dense(units = 10, activation = "softmax")

    Example:
        >>> model = build((28, 28, 1), 10, filters=[32, 64, 64], pooling=["max", "max", "none"])
    """
    filters = as_list(filters)
    check_positive_ints("filters", filters)
    n = len(filters)
    kernels = _kernel_sizes(kernel_size, n)
    padding = per_layer("padding", padding, n)
    for p in padding:
        check_choice("padding", p, PADDING)
    strides = per_layer("strides", strides, n)
    check_positive_ints("strides", strides)
    pooling = per_layer("pooling", pooling, n)
    for p in pooling:
        check_choice("pooling", p, POOLING)
    pool_size = per_layer("pool_size", pool_size, n)
    check_positive_ints("pool_size", pool_size)
    dense_units = as_list(dense_units)
    check_positive_ints("dense_units", dense_units, allow_empty=True)
    check_common(num_classes=num_classes, activation=activation, batch_norm=batch_norm,
                 task=task)
    dropout = per_layer("dropout", dropout, len(dense_units) + 1)
    check_rates("dropout", dropout)
    if len(input_shape) != 3:
        raise ValueError(
            "`input_shape` must be (height, width, channels) for the cnn recipe; use `cnn1d` "
            f"for sequences or `mlp` for flat features. Received: input_shape={tuple(input_shape)}"
        )
    check_fits(tuple(input_shape[:2]), kernels, padding, strides, pooling, pool_size)
    options = LayerOptions(n + len(dense_units) + 1, l1=l1, l2=l2,
                           kernel_initializer=kernel_initializer,
                           bias_initializer=bias_initializer)

    inputs = keras.Input(shape=tuple(input_shape), name="inputs")
    x = inputs
    for i in range(n):
        block = f"block{i + 1}"
        conv = keras.layers.Conv2D(filters[i], kernels[i], strides=strides[i],
                                   padding=padding[i], name=f"{block}_conv", **options.kwargs())
        x = conv_block(x, block, conv, batch_norm=batch_norm, activation=activation,
                       pooling=pooling[i], pool_size=pool_size[i], dims=2)
    x = keras.layers.Flatten(name="flatten")(x)
    outputs = dense_head(x, num_classes, dense_units, dropout, activation, batch_norm, options,
                         task)
    return keras.Model(inputs, outputs, name="cnn")


def _kernel_sizes(kernel_size, n: int) -> list[tuple[int, int]]:
    """Read ``kernel_size`` as R does (``c(3, 3)`` is one pair) or as one entry per layer."""
    if isinstance(kernel_size, (list, tuple)):
        nested = any(isinstance(k, (list, tuple)) for k in kernel_size)
        per_layer_list = nested or len(kernel_size) != 2
        entries = per_layer("kernel_size", kernel_size, n) if per_layer_list else [kernel_size] * n
    else:
        entries = [kernel_size] * n
    pairs = []
    for k in entries:
        pair = tuple(k) if isinstance(k, (list, tuple)) else (k, k)
        if len(pair) != 2 or any(isinstance(v, bool) or not isinstance(v, int) or v < 1
                                 for v in pair):
            raise ValueError(
                "`kernel_size` must be a positive int, a pair (height, width), or one of these "
                f"per conv layer. Received: kernel_size={kernel_size!r}"
            )
        pairs.append(pair)
    return pairs


def check_fits(size, kernels, padding, strides, pooling, pool_size) -> None:
    """Follow the spatial size through the conv blocks; raise if it shrinks below 1×1, showing
    the data flow up to there (``"block1_conv 28x28 → 26x26, ..."``)."""
    steps, (h, w) = [], size
    for i, ((kh, kw), pad, stride) in enumerate(zip(kernels, padding, strides, strict=True),
                                                start=1):
        shrink = [(f"block{i}_conv",
                   lambda d, k, stride=stride, pad=pad: _conv_out(d, k, stride, pad), (kh, kw))]
        if pooling[i - 1] != "none":
            p = pool_size[i - 1]
            shrink.append((f"block{i}_pool", lambda d, k: (d - k) // k + 1, (p, p)))
        for name, out, (kh_, kw_) in shrink:
            new = (out(h, kh_), out(w, kw_))
            steps.append(f"{name} {h}x{w} → {max(new[0], 0)}x{max(new[1], 0)}")
            if min(new) < 1:
                raise ValueError(
                    f"The input ({size[0]}x{size[1]}) is too small for these layers: "
                    + ", ".join(steps)
                    + ". Use padding='same', fewer conv layers, pooling='none' on some layers, "
                    "or a smaller kernel_size / pool_size."
                )
            h, w = new


def _conv_out(d: int, k: int, stride: int, padding: str) -> int:
    return -(-d // stride) if padding == "same" else (d - k) // stride + 1
