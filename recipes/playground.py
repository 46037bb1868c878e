"""The TensorFlow Playground network (playground.tensorflow.org), the lecture's warm-up."""

from __future__ import annotations

from labkit._lazy import lazy_import
from labkit.registry import recipe
from recipes._common import (
    LayerOptions,
    as_list,
    check_choice,
    check_penalties,
    check_positive_ints,
    dense_head,
)

keras = lazy_import("keras")
custom = lazy_import("recipes._layers")

# The Playground's input features, computed inside the model by recipes._layers.PlaygroundFeatures.
PLAYGROUND_FEATURES = ("x1", "x2", "x1^2", "x2^2", "x1*x2", "sin(x1)", "sin(x2)")
ACTIVATIONS = ("tanh", "relu", "sigmoid", "linear")  # the Playground's choices


@recipe("playground", summary="TensorFlow Playground net: engineered 2-D features → small tanh net",
        topic=0, detail="playground.tensorflow.org", inputs="points",
        train_defaults={"optimizer": "sgd", "learning_rate": 0.03, "batch_size": 10,
                        "epochs": 100, "validation_split": 0.0})
def build(input_shape, num_classes, task="classification", *,
          features=("x1", "x2"), hidden=(4, 2), activation="tanh",
          regularization="none", regularization_rate=0.0, kernel_initializer="glorot_uniform",
          bias_initializer="zeros"):
    """The Playground's network on its 2-D datasets.

    Reference: lecture topic 0. Training defaults are the Playground's: plain SGD, learning rate
    0.03, batch size 10, all 250 training points (no validation split). The Playground's single
    tanh output with squared loss is replaced by a 2-class softmax with cross-entropy; its plot
    shows 2·P(blue) − 1, which spans the same −1 (orange) … +1 (blue).

    Args:
        input_shape: ``(2,)``: the points (x1, x2).
        num_classes: 2.
        features: input features from x1, x2, x1^2, x2^2, x1*x2, sin(x1), sin(x2). Default
            ``("x1", "x2")``.
        hidden: neurons per hidden layer, up to 6 layers of up to 8. Default ``(4, 2)``.
        activation: tanh, relu, sigmoid or linear. Default ``"tanh"``.
        regularization: ``"none"``, ``"l1"`` or ``"l2"``. Default ``"none"``.
        regularization_rate: its α. Default ``0``.
        kernel_initializer, bias_initializer: start values (see ``mlp``).

    Returns:
        An uncompiled ``keras.Model``: ``features`` → ``fc1..fcN`` → ``predictions``.

    R keras:
        keras_model_sequential() %>%
          layer_dense(units = 4, activation = "tanh", input_shape = c(2)) %>%
          layer_dense(units = 2, activation = "tanh") %>%
          layer_dense(units = 2, activation = "softmax")

    Example:
        >>> model = build((2,), 2, features=["x1", "x2", "x1^2", "x2^2"], hidden=[8, 8])
    """
    features = as_list(features)
    for feature in features:
        check_choice("features", feature, PLAYGROUND_FEATURES)
    if not features or len(set(features)) != len(features):
        raise ValueError(f"`features` must name distinct features. Received: features={features}")
    hidden = as_list(hidden)
    check_positive_ints("hidden", hidden, allow_empty=True)
    if len(hidden) > 6 or any(h > 8 for h in hidden):
        raise ValueError(f"The Playground allows up to 6 hidden layers of up to 8 neurons. "
                         f"Received: hidden={hidden}")
    check_choice("activation", activation, ACTIVATIONS)
    check_choice("regularization", regularization, ("none", "l1", "l2"))
    check_penalties("regularization_rate", [regularization_rate])
    if tuple(input_shape) != (2,) or num_classes != 2 or task not in ("classification", "binary"):
        raise ValueError("The playground recipe takes the 2-D Playground sets (circle, xor, gauss, "
                         f"spiral) as a classification or binary task. Received: "
                         f"input_shape={tuple(input_shape)}, num_classes={num_classes}, "
                         f"task={task!r}")
    rate = regularization_rate if regularization != "none" else 0.0
    options = LayerOptions(len(hidden) + 1, l1=rate if regularization == "l1" else 0.0,
                           l2=rate if regularization == "l2" else 0.0,
                           kernel_initializer=kernel_initializer, bias_initializer=bias_initializer)

    inputs = keras.Input(shape=(2,), name="inputs")
    x = custom.PlaygroundFeatures(features, name="features")(inputs)
    outputs = dense_head(x, 2, hidden, [0.0] * (len(hidden) + 1), activation, False, options, task)
    return keras.Model(inputs, outputs, name="playground")
