"""Hyperparameters shared by every recipe: checks, per-layer lists, penalties and start values.

Messages follow Keras: they name the argument and repeat the value received.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from labkit._lazy import lazy_import
from labkit.options import parse_call

keras = lazy_import("keras")
custom = lazy_import("labkit.layers")

ACTIVATIONS = ("relu", "sigmoid", "tanh", "elu", "selu", "gelu", "swish", "softplus", "linear",
               "leaky_relu")
INITIALIZERS = ("random_uniform", "random_normal", "truncated_normal", "glorot_uniform",
                "glorot_normal", "he_uniform", "he_normal", "lecun_uniform", "lecun_normal",
                "orthogonal", "zeros", "ones", "constant")


def per_layer(name: str, value: Any, n: int) -> list:
    """Broadcast one value to ``n`` layers, or check that a list holds exactly ``n`` values."""
    if isinstance(value, (list, tuple)):
        if len(value) != n:
            raise ValueError(
                f"`{name}` needs one value per layer ({n}) or a single value. "
                f"Received: {name}={list(value)}"
            )
        return list(value)
    return [value] * n


def as_list(value: Any) -> list:
    """A per-layer setting given as one value or a list (``units=64`` or ``units=[64, 32]``)."""
    return list(value) if isinstance(value, (list, tuple)) else [value]


def check_positive_ints(name: str, values: Sequence, *, allow_empty: bool = False) -> None:
    if not values and not allow_empty:
        raise ValueError(f"`{name}` needs at least one value. Received: {name}={list(values)}")
    for v in values:
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"`{name}` must hold positive integers. Received: {name}={values!r}")


def check_choice(name: str, value: Any, choices: Sequence[str]) -> None:
    if value not in choices:
        raise ValueError(
            f"`{name}` must be one of {', '.join(map(str, choices))}. Received: {name}={value!r}"
        )


def check_rates(name: str, values: Sequence) -> None:
    """Dropout-like rates must lie in [0, 1)."""
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v < 1:
            raise ValueError(f"`{name}` must be in [0, 1). Received: {name}={_show(values)}")


def check_penalties(name: str, values: Sequence) -> None:
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0:
            raise ValueError(f"`{name}` must be >= 0. Received: {name}={_show(values)}")


def _show(values: Sequence) -> Any:
    return values[0] if len(set(map(repr, values))) == 1 else list(values)


def parse_initializer(name: str, spec: Any) -> dict:
    """Read an initializer given as a name, ``"name(k=v, ...)"`` or ``{"name": ..., **kwargs}``.

    Returns ``{"class_name": ..., "config": {...}}``, checked against Keras's initializers.
    """
    if isinstance(spec, dict):
        kwargs = dict(spec)
        init = kwargs.pop("name", None)
    elif isinstance(spec, str):
        try:
            init, args, kwargs = parse_call(spec)
        except ValueError:
            raise ValueError(
                f"`{name}` arguments must be keyword=number pairs, e.g. 'random_uniform("
                f"minval=-0.05, maxval=0.05)'. Received: {name}={spec!r}") from None
        if len(args) > 1 or (args and init != "constant"):  # constant(0.1): the one positional
            raise ValueError(f"`{name}` takes keyword arguments only, e.g. "
                             f"'random_normal(stddev=0.05)'. Received: {name}={spec!r}")
        kwargs = {"value": args[0], **kwargs} if args else kwargs
    else:
        init, kwargs = None, {}
    if init not in INITIALIZERS:
        raise ValueError(
            f"`{name}` must name an initializer ({', '.join(INITIALIZERS)}), optionally with "
            f"arguments such as 'random_normal(stddev=0.05)'. Received: {name}={spec!r}"
        )
    return {"class_name": init, "config": kwargs}


def conv_block(x, name: str, conv, *, batch_norm: bool, activation: str, pooling: str,
               pool_size: int, dims: int):
    """``conv`` (a configured Conv1D/Conv2D layer) → [batch norm] → activation → [max or
    average pooling], layers named ``{name}_conv`` (by the caller), ``_bn``, ``_<activation>``,
    ``_pool``."""
    x = conv(x)
    if batch_norm:
        x = keras.layers.BatchNormalization(name=f"{name}_bn")(x)
    x = keras.layers.Activation(activation, name=f"{name}_{activation}")(x)
    if pooling != "none":
        kind = "Max" if pooling == "max" else "Average"
        pool = getattr(keras.layers, f"{kind}Pooling{dims}D")
        x = pool(pool_size, name=f"{name}_pool")(x)
    return x


def initializer(spec: dict):
    """A Keras initializer instance from :func:`parse_initializer`'s result."""
    class_name = "".join(part.capitalize() for part in spec["class_name"].split("_"))
    cls = getattr(keras.initializers, class_name)
    try:
        return cls(**spec["config"])
    except TypeError as err:
        raise ValueError(
            f"Bad arguments for initializer {spec['class_name']!r}: {err}. "
            f"Received: {spec['config']}"
        ) from None


class LayerOptions:
    """Per-layer penalties and start values for the ``n`` weighted layers of a recipe.

    ``l1``/``l2`` are the lecture's α in h̃ = h + αΩ(θ), one value or one per layer. Keras adds
    ``l1 * sum(|w|)`` and ``l2 * sum(w**2)`` to the loss (no ½ factor, no division by the number
    of examples), so α here is exactly the coefficient of the penalty in the training loss.
    """

    def __init__(self, n: int, *, l1=0.0, l2=0.0, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", l1_prunes: bool = False) -> None:
        self.l1_prunes = l1_prunes  # L1 as the Playground's: weights die at 0 (l2 must be 0)
        self.l1 = per_layer("l1", l1, n)
        self.l2 = per_layer("l2", l2, n)
        check_penalties("l1", self.l1)
        check_penalties("l2", self.l2)
        self.kernel_init = parse_initializer("kernel_initializer", kernel_initializer)
        self.bias_init = parse_initializer("bias_initializer", bias_initializer)
        self._next = 0

    def kwargs(self, index: int | None = None) -> dict:
        """Keyword arguments for weighted layer ``index``; by default the next one (Dense, Conv*)
        in build order."""
        if index is None:
            index, self._next = self._next, self._next + 1
        i = index
        l1, l2 = self.l1[i], self.l2[i]
        regularizer = keras.regularizers.L1L2(l1=l1, l2=l2) if (l1 or l2) else None
        if self.l1_prunes and l1:
            regularizer = custom.PlaygroundL1(l1)
        return {
            "kernel_initializer": initializer(self.kernel_init),
            "bias_initializer": initializer(self.bias_init),
            "kernel_regularizer": regularizer,
        }


# The output layer's activation for each task (labkit.tasks has the matching losses and metrics).
HEADS = {"classification": "softmax", "binary": "sigmoid", "multilabel": "sigmoid",
         "regression": "linear"}


def output_layer(x, num_classes: int, task: str = "classification", **kwargs):
    """The ``predictions`` layer for ``task``: a softmax over ``num_classes`` classes, one sigmoid
    unit (binary, as ``layer_dense(units = 1, activation = "sigmoid")``), a sigmoid per label
    (multilabel) or a linear unit per target (regression). ``kwargs`` go to the Dense layer.

    It computes in float32 whatever the dtype policy, so under mixed precision the outputs and
    the loss keep full precision (Keras's advice for softmax outputs)."""
    units = 1 if task == "binary" else num_classes
    return keras.layers.Dense(units, activation=HEADS[task], name="predictions", dtype="float32",
                              **kwargs)(x)


def dense_head(x, num_classes: int, units: Sequence[int], dropout: Sequence[float],
               activation: str, batch_norm: bool, options: LayerOptions,
               task: str = "classification"):
    """Dense layers ``fc1..fcN`` then the task's ``predictions`` layer (:func:`output_layer`).

    ``dropout`` holds one rate per dense layer (hidden ones and the output), applied to that
    layer's input, so a single rate reproduces the course's flatten → dropout → softmax.
    """
    for i, width in enumerate(units, start=1):
        if dropout[i - 1]:
            x = keras.layers.Dropout(dropout[i - 1], name=f"fc{i}_dropout")(x)
        x = keras.layers.Dense(width, name=f"fc{i}", **options.kwargs())(x)
        if batch_norm:
            x = keras.layers.BatchNormalization(name=f"fc{i}_bn")(x)
        x = keras.layers.Activation(activation, name=f"fc{i}_{activation}")(x)
    if dropout[-1]:
        x = keras.layers.Dropout(dropout[-1], name="predictions_dropout")(x)
    return output_layer(x, num_classes, task, **options.kwargs())


def check_task(task: str, num_classes: int) -> None:
    """``task`` is known and ``num_classes`` fits it: >= 2 classes for classification, 1 or 2
    for binary (one sigmoid unit either way), >= 1 label or target otherwise."""
    check_choice("task", task, HEADS)
    minimum = 2 if task == "classification" else 1
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < minimum:
        raise ValueError(f"`num_classes` must be an integer >= {minimum} for task={task!r}. "
                         f"Received: num_classes={num_classes!r}")
    if task == "binary" and num_classes > 2:
        raise ValueError("A binary head is one sigmoid unit for two classes. "
                         f"Received: num_classes={num_classes}")


def check_common(*, num_classes: int, activation: str, batch_norm: Any,
                 task: str = "classification") -> None:
    check_task(task, num_classes)
    check_choice("activation", activation, ACTIVATIONS)
    if not isinstance(batch_norm, bool):
        raise ValueError(f"`batch_norm` must be true or false. Received: batch_norm={batch_norm!r}")
