"""A small residual network: stages of residual blocks with identity and projection shortcuts."""

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
)

keras = lazy_import("keras")


@recipe("resnet", summary="Small residual net: stem conv → residual stages → global pool → softmax",
        topic=12,
        detail="residual nets, skip connections", inputs="image")
def build(input_shape, num_classes, task="classification", *,
          blocks=(2, 2), width=16, skip=True, activation="relu",
          batch_norm=True, dropout=0.0, l1=0.0, l2=0.0, kernel_initializer="he_normal",
          bias_initializer="zeros"):
    """Residual network: a 3×3 stem, then stages of two-conv residual blocks.

    Reference: lecture topic 12. Stage ``s`` has ``blocks[s]`` blocks of ``width · 2**s`` filters;
    every stage after the first halves the size with stride 2. A block computes
    ``activation(F(x) + shortcut(x))``: the shortcut is the identity when shapes agree and a 1×1
    projection conv otherwise. ``skip=False`` drops the shortcuts: the same depth as a plain net.

    Args:
        input_shape: ``(height, width, channels)``.
        num_classes: number of output classes (>= 2).
        blocks: residual blocks per stage. Default ``(2, 2)`` (4 blocks, 8 conv layers + stem).
        width: filters of the first stage. Default ``16``.
        skip: keep the skip connections. Default ``True``.
        activation: default ``"relu"``. batch_norm: after every conv. Default ``True``.
        dropout: before the output layer. Default ``0``.
        l1, l2: one α for every kernel. kernel_initializer: default ``"he_normal"``.

    Returns:
        An uncompiled ``keras.Model`` (layers ``stem_conv``, ``stage{s}_block{b}_conv{1,2}``,
        ``stage{s}_block{b}_add``, ``stage{s}_block{b}_project``, ``predictions``).

    R keras (one block, functional API):
        shortcut <- x
        x <- x %>% layer_conv_2d(16, c(3, 3), padding = "same") %>% layer_batch_normalization() %>%
          layer_activation("relu") %>% layer_conv_2d(16, c(3, 3), padding = "same") %>%
          layer_batch_normalization()
        x <- layer_add(list(x, shortcut)) %>% layer_activation("relu")

    Example:
        >>> model = build((32, 32, 3), 10, blocks=[3, 3, 3], width=16)   # ResNet-20
    """
    blocks = as_list(blocks)
    check_positive_ints("blocks", blocks)
    check_positive_ints("width", [width])
    check_common(num_classes=num_classes, activation=activation, batch_norm=batch_norm,
                 task=task)
    check_rates("dropout", [dropout])
    if not isinstance(skip, bool):
        raise ValueError(f"`skip` must be true or false. Received: skip={skip!r}")
    if isinstance(l1, (list, tuple)) or isinstance(l2, (list, tuple)):
        raise ValueError("`l1`/`l2` take one α for every layer in the resnet recipe.")
    options = LayerOptions(1, l1=l1, l2=l2, kernel_initializer=kernel_initializer,
                           bias_initializer=bias_initializer)

    def conv(x, filters, kernel, stride, name):
        x = keras.layers.Conv2D(filters, kernel, strides=stride, padding="same", name=name,
                                **options.kwargs(0))(x)
        return keras.layers.BatchNormalization(name=f"{name}_bn")(x) if batch_norm else x

    inputs = keras.Input(shape=tuple(input_shape), name="inputs")
    x = keras.layers.Activation(activation, name="stem_act")(conv(inputs, width, 3, 1, "stem_conv"))
    for s, count in enumerate(blocks):
        filters = width * 2 ** s
        for b in range(count):
            name = f"stage{s + 1}_block{b + 1}"
            stride = 2 if s > 0 and b == 0 else 1
            shortcut = x
            y = conv(x, filters, 3, stride, f"{name}_conv1")
            y = keras.layers.Activation(activation, name=f"{name}_act1")(y)
            y = conv(y, filters, 3, 1, f"{name}_conv2")
            if skip:
                if stride != 1 or shortcut.shape[-1] != filters:
                    shortcut = conv(shortcut, filters, 1, stride, f"{name}_project")
                y = keras.layers.Add(name=f"{name}_add")([y, shortcut])
            x = keras.layers.Activation(activation, name=f"{name}_out")(y)
    x = keras.layers.GlobalAveragePooling2D(name="global_pool")(x)
    outputs = dense_head(x, num_classes, [], [dropout], activation, False, options, task)
    return keras.Model(inputs, outputs, name="resnet" if skip else "plain")

