"""VGG16, from scratch and as the course lab's pretrained conv base for transfer learning."""

from __future__ import annotations

import os

from labkit import trust
from labkit._lazy import lazy_import
from labkit.phases import Phase
from labkit.registry import recipe
from recipes._common import (
    LayerOptions,
    as_list,
    check_common,
    check_positive_ints,
    check_rates,
    dense_head,
    output_layer,
    per_layer,
)

keras = lazy_import("keras")
custom = lazy_import("labkit.layers")

BLOCKS = ((2, 64), (2, 128), (3, 256), (3, 512), (3, 512))  # (conv layers, filters) per block
NOTOP_FILE = "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5"
MIN_SIZE = 32  # keras.applications.VGG16's smallest input without its top


@recipe("vgg16", summary="VGG16 from scratch: 5 conv blocks, max pooling, 2 dense layers",
        topic=22, detail="VGG16 data flow", inputs="image")
def build(input_shape, num_classes, task="classification", *,
          width=1.0, dense_units=(4096, 4096), dropout=0.5,
          activation="relu", batch_norm=False, l1=0.0, l2=0.0,
          kernel_initializer="glorot_uniform", bias_initializer="zeros"):
    """The VGG16 of the lecture's figure: blocks of 3×3 convs (64, 128, 256, 512, 512 filters; 2,
    2, 3, 3, 3 layers), 2×2 max pooling after each, two dense layers, softmax.

    Reference: lecture topic 22. ``width`` multiplies every filter count and dense width so the
    net fits CPUs (``width=0.125``: 8 … 64 filters); pooling pads (``"same"``), so small images
    such as 8×8 digits stay at least 1×1 through the five blocks.

    Args:
        input_shape: ``(height, width, channels)``.
        num_classes: number of output classes (>= 2).
        width: multiplier of filters and dense units. Default ``1.0`` (the real VGG16).
        dense_units: the two dense layers before the output. Default ``(4096, 4096)``.
        dropout: before each dense layer, one value or one per dense layer. Default ``0.5``.
        activation, batch_norm, l1, l2, kernel_initializer, bias_initializer: as in ``cnn``.

    Returns:
        An uncompiled ``keras.Model``: ``block{b}_conv{i}``, ``block{b}_pool``, ``fc1``, ``fc2``,
        ``predictions``.

    R keras:
        model <- keras_model_sequential() %>%
          layer_conv_2d(64, c(3, 3), activation = "relu", padding = "same",
                        input_shape = c(224, 224, 3)) %>%
          layer_conv_2d(64, c(3, 3), activation = "relu", padding = "same") %>%
          layer_max_pooling_2d(c(2, 2)) %>%   # ... blocks 2-5 likewise
          layer_flatten() %>% layer_dense(4096, activation = "relu") %>%
          layer_dense(4096, activation = "relu") %>% layer_dense(1000, activation = "softmax")

    Example:
        >>> model = build((32, 32, 3), 10, width=0.125, dense_units=[128, 128])
    """
    if isinstance(width, bool) or not isinstance(width, (int, float)) or not 0 < width <= 4:
        raise ValueError(f"`width` must be in (0, 4]. Received: width={width!r}")
    dense_units = [max(1, round(u * width)) for u in as_list(dense_units)]
    check_positive_ints("dense_units", dense_units, allow_empty=True)
    check_common(num_classes=num_classes, activation=activation, batch_norm=batch_norm,
                 task=task)
    dropout = per_layer("dropout", dropout, len(dense_units) + 1)
    check_rates("dropout", dropout)
    options = LayerOptions(13 + len(dense_units) + 1, l1=l1, l2=l2,
                           kernel_initializer=kernel_initializer, bias_initializer=bias_initializer)

    inputs = keras.Input(shape=tuple(input_shape), name="inputs")
    x = inputs
    for b, (layers, filters) in enumerate(BLOCKS, start=1):
        for i in range(1, layers + 1):
            x = keras.layers.Conv2D(max(1, round(filters * width)), 3, padding="same",
                                    name=f"block{b}_conv{i}", **options.kwargs())(x)
            if batch_norm:
                x = keras.layers.BatchNormalization(name=f"block{b}_conv{i}_bn")(x)
            x = keras.layers.Activation(activation, name=f"block{b}_conv{i}_{activation}")(x)
        x = keras.layers.MaxPooling2D(2, padding="same", name=f"block{b}_pool")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    outputs = dense_head(x, num_classes, dense_units, dropout, activation, batch_norm, options,
                         task)
    return keras.Model(inputs, outputs, name="vgg16")


def _transfer_phases(hparams: dict, epochs: int) -> list[Phase]:
    """Feature extraction (base frozen) for ``epochs``, then fine-tuning for
    ``fine_tune_epochs`` with the layers from ``fine_tune_from`` on unfrozen."""
    def frozen(model):
        model.get_layer("vgg16").trainable = False
        return model

    def fine_tune(model):
        base = model.get_layer("vgg16")
        base.trainable = True
        unfrozen = False
        for layer in base.layers:
            unfrozen = unfrozen or layer.name == hparams["fine_tune_from"]
            layer.trainable = unfrozen
        return model

    plan = [Phase("feature_extraction", epochs, frozen, split=_split_base_head)]
    if hparams["fine_tune_epochs"]:
        plan.append(Phase("fine_tuning", hparams["fine_tune_epochs"], fine_tune,
                          learning_rate=hparams["fine_tune_learning_rate"]))
    return plan


def _split_base_head(model):
    """``(features, head)``: the frozen base (with its preprocessing) and the new head."""
    flatten = model.get_layer("flatten")
    features = keras.Model(model.input, flatten.input, name="features")  # the base's output
    head_input = keras.Input(shape=tuple(flatten.input.shape[1:]), name="base_features")
    x = head_input
    for layer in model.layers[model.layers.index(flatten):]:
        x = layer(x)
    return features, keras.Model(head_input, x, name="head")


@recipe("vgg16_transfer",
        summary="Pretrained VGG16 conv base + new head: feature extraction, then fine-tuning",
        topic=(12, 22), detail="transfer learning", inputs="image",
        phases=_transfer_phases, train_defaults={"optimizer": "rmsprop", "learning_rate": 2e-5})
def build_transfer(input_shape, num_classes, task="classification", *,
                   weights="imagenet", dense_units=256, dropout=0.5,
                   fine_tune_from="block5_conv1", fine_tune_epochs=0,
                   fine_tune_learning_rate=1e-5, image_size=None):
    """The course lab's transfer learning with ``keras.applications.VGG16`` as conv base.

    Reference: lecture topic 12. Two phases in one run: the base frozen while the new head trains
    (``--epochs``; the base's features are computed once — the course's fast feature extraction),
    then ``fine_tune_epochs`` with the layers from ``fine_tune_from`` on unfrozen at
    ``fine_tune_learning_rate``. Inputs below 32×32 are resized, grey images repeated to RGB, and
    pixels converted as ``vgg16.preprocess_input`` does, inside the model.

    Args:
        input_shape: ``(height, width, channels)``, 1 or 3 channels.
        num_classes: number of output classes (>= 2).
        weights: ``"imagenet"`` (Keras downloads and caches it; offline it must already be in
            ``~/.keras/models``), a path to a notop ``.h5`` weights file, or ``"none"``.
        dense_units: width of the new head's dense layer. Default ``256`` (the lab's).
        dropout: before the output layer. Default ``0.5``.
        fine_tune_from: first base layer to unfreeze. Default ``"block5_conv1"``.
        fine_tune_epochs: epochs of fine-tuning after feature extraction. Default ``0``.
        fine_tune_learning_rate: default ``1e-5`` (the lab's).
        image_size: resize inputs to this square size; default: the input size, at least 32.

    Returns:
        An uncompiled ``keras.Model``: ``preprocess`` → ``vgg16`` (nested, frozen) → ``flatten`` →
        ``fc1`` → ``predictions``.

    R keras:
        conv_base <- application_vgg16(weights = "imagenet", include_top = FALSE,
                                       input_shape = c(150, 150, 3))
        model <- keras_model_sequential() %>% conv_base %>% layer_flatten() %>%
          layer_dense(units = 256, activation = "relu") %>%
          layer_dense(units = 1, activation = "sigmoid")
        freeze_weights(conv_base)        # later: unfreeze_weights(conv_base, from = "block5_conv1")

    Example:
        >>> model = build_transfer((150, 150, 3), 2, weights="none")
    """
    check_common(num_classes=num_classes, activation="relu", batch_norm=False, task=task)
    check_positive_ints("dense_units", [dense_units])
    check_rates("dropout", [dropout])
    check_positive_ints("fine_tune_epochs", [fine_tune_epochs + 1])
    if not isinstance(fine_tune_learning_rate, (int, float)) or fine_tune_learning_rate <= 0:
        raise ValueError("`fine_tune_learning_rate` must be > 0. "
                         f"Received: fine_tune_learning_rate={fine_tune_learning_rate!r}")
    layer_names = [f"block{b}_conv{i}" for b, (n, _) in enumerate(BLOCKS, 1)
                   for i in range(1, n + 1)]
    if fine_tune_from not in layer_names:
        raise ValueError(f"`fine_tune_from` must name a VGG16 conv layer ({layer_names[0]} … "
                         f"{layer_names[-1]}). Received: fine_tune_from={fine_tune_from!r}")
    if len(input_shape) != 3 or input_shape[-1] not in (1, 3):
        raise ValueError("vgg16_transfer takes images with 1 or 3 channels. "
                         f"Received: input_shape={tuple(input_shape)}")
    size = image_size or max(MIN_SIZE, *input_shape[:2])
    if not isinstance(size, int) or size < MIN_SIZE:
        raise ValueError(f"`image_size` must be an integer >= {MIN_SIZE}. "
                         f"Received: image_size={image_size!r}")
    base_weights = _weights(weights)

    inputs = keras.Input(shape=tuple(input_shape), name="inputs")
    x = inputs
    if tuple(input_shape[:2]) != (size, size):
        x = keras.layers.Resizing(size, size, name="resize")(x)
    x = custom.VGGPreprocess(name="preprocess")(x)
    base = keras.applications.VGG16(include_top=False, weights=None, input_shape=(size, size, 3))
    if base_weights:
        trust.check_weights_file(base_weights, base)  # links, virtual datasets, shape bombs
        base.load_weights(base_weights)
    base.trainable = False
    x = base(x)
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dense(dense_units, activation="relu", name="fc1")(x)
    if dropout:
        x = keras.layers.Dropout(dropout, name="predictions_dropout")(x)
    outputs = output_layer(x, num_classes, task)
    return keras.Model(inputs, outputs, name="vgg16_transfer")


def _weights(weights: str) -> str | None:
    """The notop weights file to load, or None for random start values."""
    if weights in ("none", None):
        return None
    if weights == "imagenet":
        cached = os.path.join(os.path.expanduser(os.environ.get("KERAS_HOME", "~/.keras")),
                              "models", NOTOP_FILE)
        if os.path.isfile(cached):
            return cached
        try:
            return keras.utils.get_file(
                NOTOP_FILE, "https://storage.googleapis.com/tensorflow/keras-applications/vgg16/"
                + NOTOP_FILE, cache_subdir="models")
        except Exception:
            raise ValueError(
                f"The ImageNet weights are not in {cached} and could not be downloaded. On a "
                f"machine with network run `python -c \"import keras; "
                f"keras.applications.VGG16(include_top=False)\"`, copy {NOTOP_FILE} into "
                f"{os.path.dirname(cached)}, or pass weights=PATH to a notop .h5 file "
                "(or weights=none for random start values)."
            ) from None
    if not os.path.isfile(str(weights)):
        raise ValueError("`weights` must be 'imagenet', 'none' or a path to a notop .h5 file. "
                         f"Received: weights={weights!r}")
    return weights
