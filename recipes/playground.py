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
custom = lazy_import("labkit.layers")

# The Playground's input features, computed inside the model by labkit.layers.PlaygroundFeatures.
PLAYGROUND_FEATURES = ("x1", "x2", "x1^2", "x2^2", "x1*x2", "sin(x1)", "sin(x2)")
ACTIVATIONS = ("tanh", "relu", "sigmoid", "linear")  # the Playground's choices


# Exact mode's start values, as the Playground's nn.ts draws them.
EXACT_KERNEL = "random_uniform(minval=-0.5, maxval=0.5)"
EXACT_BIAS = "constant(0.1)"


def exact_loss(hparams: dict, task: str):
    """The loss a playground model trains with: the Playground's ½(output − target)² in exact
    mode, the task's own otherwise (None)."""
    if not hparams.get("exact"):
        return None
    return custom.PlaygroundSquaredError(classes=task != "regression")


@recipe("playground", summary="TensorFlow Playground net: engineered 2-D features → small tanh net",
        topic=0, detail="playground.tensorflow.org", inputs="points", loss=exact_loss,
        train_defaults={"optimizer": "sgd", "learning_rate": 0.03, "batch_size": 10,
                        "epochs": 100, "validation_split": 0.0})
def build(input_shape, num_classes, task="classification", *,
          features=("x1", "x2"), hidden=(4, 2), activation="tanh",
          regularization="none", regularization_rate=0.0, dropout=0.0, exact=False,
          kernel_initializer=None, bias_initializer=None):
    """The Playground's network on its 2-D datasets.

    Reference: lecture topic 0. Training defaults are the Playground's: plain SGD, learning rate
    0.03, batch size 10, all the training points (no validation split).

    By default the head is Keras's for the task: a 2-class softmax with cross-entropy (its plot
    shows 2·P(blue) − 1, which spans the same −1 orange … +1 blue), one sigmoid unit for
    ``task="binary"``, one linear unit for the regression sets (plane, multi-gauss).

    ``exact=True`` is the Playground's own network and update rule (its ``src/nn.ts``), so that
    plain SGD follows the same path as the Playground for the same start weights and data order:

    - one tanh output unit, read as P(blue) = (tanh + 1) / 2 so the binary task's accuracy, AUC
      and ``labkit predict`` work (``task="binary"``; regression: one linear unit);
    - loss ½(output − target)² with targets ±1 (:class:`labkit.layers.PlaygroundSquaredError`);
    - start weights U(−0.5, 0.5) and biases 0.1;
    - L2 as the Playground's ½w² per weight: a Keras ``l2`` of α/2, since Keras's ``l2`` adds
      α·Σw², whose gradient is twice the Playground's;
    - L1 whose weights die at zero: with ``--optimizer sgd``, a weight that the L1 step carries
      across 0 is set to 0 and stays 0 (:class:`labkit.layers.PlaygroundSGD`).

    Train it without reshuffling (``--no-shuffle``) to keep the Playground's data order.

    Args:
        input_shape: ``(2,)``: the points (x1, x2).
        num_classes: 2 (classification), or 1 for regression.
        task: ``"classification"``, ``"binary"`` or ``"regression"``; exact mode needs binary
            or regression.
        features: input features from x1, x2, x1^2, x2^2, x1*x2, sin(x1), sin(x2). Default
            ``("x1", "x2")``.
        hidden: neurons per hidden layer, up to 6 layers of up to 8. Default ``(4, 2)``.
        activation: tanh, relu, sigmoid or linear. Default ``"tanh"``.
        regularization: ``"none"``, ``"l1"`` or ``"l2"``. Default ``"none"``.
        regularization_rate: its α: the Playground's rate in exact mode, Keras's coefficient
            otherwise. Default ``0``.
        dropout: rate of the Dropout after each hidden layer (lecture topic 13). Default ``0``.
        exact: the Playground's own network and update rule (above). Default ``False``.
        kernel_initializer, bias_initializer: start values (see ``mlp``). Default None:
            ``glorot_uniform`` and ``zeros``, or in exact mode U(−0.5, 0.5) and 0.1.

    Returns:
        An uncompiled ``keras.Model``: ``features`` → ``fc1..fcN`` → ``predictions``.

    R keras:
        keras_model_sequential() %>%
          layer_dense(units = 4, activation = "tanh", input_shape = c(2)) %>%
          layer_dense(units = 2, activation = "tanh") %>%
          layer_dense(units = 2, activation = "softmax")

    Example:
        >>> model = build((2,), 2, features=["x1", "x2", "x1^2", "x2^2"], hidden=[8, 8])
        >>> exact = build((2,), 2, "binary", exact=True, regularization="l1",
        ...               regularization_rate=0.003)
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
    if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0 <= dropout < 1:
        raise ValueError(f"`dropout` must be in [0, 1). Received: dropout={dropout!r}")
    if not isinstance(exact, bool):
        raise ValueError(f"`exact` must be true or false. Received: exact={exact!r}")
    outputs = 1 if task == "regression" else 2
    if tuple(input_shape) != (2,) or num_classes != outputs or task not in (
            "classification", "binary", "regression"):
        raise ValueError("The playground recipe takes the 2-D Playground sets: circle, xor, "
                         "gauss, spiral as a classification or binary task, plane and "
                         f"multi-gauss as regression. Received: input_shape="
                         f"{tuple(input_shape)}, num_classes={num_classes}, task={task!r}")
    if exact and task == "classification":
        raise ValueError("Exact mode has the Playground's single tanh output: train it as a "
                         "binary task (--task binary). Received: exact=True, "
                         "task='classification'")
    rate = regularization_rate if regularization != "none" else 0.0
    if exact and regularization == "l2":
        rate /= 2  # the Playground's ½w²
    options = LayerOptions(
        len(hidden) + 1, l1=rate if regularization == "l1" else 0.0,
        l2=rate if regularization == "l2" else 0.0, l1_prunes=exact,
        kernel_initializer=kernel_initializer or (EXACT_KERNEL if exact else "glorot_uniform"),
        bias_initializer=bias_initializer or (EXACT_BIAS if exact else "zeros"))

    inputs = keras.Input(shape=(2,), name="inputs")
    x = custom.PlaygroundFeatures(features, name="features")(inputs)
    if not exact:
        outputs = dense_head(x, num_classes, hidden, [0.0] + [dropout] * len(hidden),
                             activation, False, options, task)
        return keras.Model(inputs, outputs, name="playground")
    for i, width in enumerate(hidden, start=1):
        x = keras.layers.Dense(width, activation=activation, name=f"fc{i}", **options.kwargs())(x)
        if dropout:
            x = keras.layers.Dropout(dropout, name=f"fc{i}_dropout")(x)
    if task == "regression":
        outputs = keras.layers.Dense(1, name="predictions", dtype="float32", **options.kwargs())(x)
    else:
        x = keras.layers.Dense(1, activation="tanh", name="output", dtype="float32",
                               **options.kwargs())(x)
        outputs = keras.layers.Rescaling(0.5, offset=0.5, name="predictions")(x)  # P(blue)
    return keras.Model(inputs, outputs, name="playground")
