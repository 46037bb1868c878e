"""Optimizers and learning-rate schedules by name, as the lecture introduces them.

Schedules count in epochs, not steps, so they mean the same at every batch size; between epoch
boundaries they advance by fractions of an epoch (step / steps per epoch), like Keras's
schedules do by steps.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from labkit import options
from labkit.errors import LabkitError


@dataclass(frozen=True)
class Optimizer:
    """A row of :data:`OPTIMIZERS`: Keras class, default ε, fixed arguments, tunable ones."""

    keras_class: str
    learning_rate: float
    params: dict[str, float] = field(default_factory=dict)  # name → Keras default
    fixed: dict[str, Any] = field(default_factory=dict)


# Defaults are Keras's, except momentum's α = 0.9, the lecture's usual choice.
OPTIMIZERS = {
    "sgd": Optimizer("SGD", 0.01),
    "momentum": Optimizer("SGD", 0.01, {"momentum": 0.9}),  # v ← αv − εĝ, θ ← θ + v
    "nesterov": Optimizer("SGD", 0.01, {"momentum": 0.9}, {"nesterov": True}),
    "rmsprop": Optimizer("RMSprop", 0.001, {"rho": 0.9, "momentum": 0.0, "epsilon": 1e-7}),
    "adam": Optimizer("Adam", 0.001, {"beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7}),
}
OPTIMIZER_PARAMS = ("momentum", "rho", "beta_1", "beta_2", "epsilon")
CLIPPING = ("clipnorm", "clipvalue")

# name → default arguments. Epoch-valued: every, tau, boundaries, epochs, patience.
SCHEDULES: dict[str, dict[str, Any]] = {
    "constant": {},
    "exponential": {"rate": 0.5, "every": 10},  # ε₀ · rate^(epoch / every)
    "inverse-time": {"tau": 1.0},  # ε₀ / (1 + k/τ): Σε = ∞, Σε² < ∞
    "step": {"every": 10, "factor": 0.5},  # ε₀ · factor^⌊epoch / every⌋
    "piecewise": {"boundaries": [], "factors": [1.0]},  # ε₀ · factors[i] between boundaries
    "cosine": {"epochs": None, "alpha": 0.0},  # None: the run's epochs
    "plateau": {"factor": 0.1, "patience": 10, "min_delta": 1e-4, "min_lr": 0.0, "cooldown": 0},
}


def check(name: str, learning_rate: float | None, params: dict[str, Any] | None = None) -> None:
    """Validate an optimizer, its learning rate and its options (``momentum``, ``clipnorm``…)."""
    if name not in OPTIMIZERS:
        raise LabkitError(f"--optimizer must be one of {', '.join(OPTIMIZERS)}. Received: {name!r}")
    if learning_rate is not None:
        _positive("--learning-rate", learning_rate)
    if unknown := [k for k in (params or {}) if k not in OPTIMIZER_PARAMS + CLIPPING]:
        raise LabkitError(f"Unknown optimizer option(s): {', '.join(unknown)}. "
                          f"Known: {', '.join(OPTIMIZER_PARAMS + CLIPPING)}.")
    for key, value in (params or {}).items():
        if value is None:
            continue
        flag = f"--{key.replace('_', '-')}"
        if key in CLIPPING or key == "epsilon":
            _positive(flag, value)
            continue
        if key not in OPTIMIZERS[name].params:
            takers = [n for n, o in OPTIMIZERS.items() if key in o.params]
            raise LabkitError(f"{flag} applies to --optimizer {' / '.join(takers)}, "
                              f"not {name}.")
        if not _number(value) or not 0 <= value < 1:
            raise LabkitError(f"{flag} must be in [0, 1). Received: {value!r}")


def default_learning_rate(name: str) -> float:
    return OPTIMIZERS[name].learning_rate


def make(name: str, learning_rate: float | None = None, params: dict[str, Any] | None = None,
         schedule: dict[str, Any] | None = None, steps_per_epoch: int = 1, model=None):
    """A fresh Keras optimizer ``name`` at ``learning_rate`` (its default when None).

    Args:
        params: optimizer hyperparameters and clipping; None values keep Keras's defaults.
        schedule: a resolved schedule (:func:`resolve_schedule`); None is constant.
        steps_per_epoch: converts the schedule's epochs into optimizer steps.
        model: the model it will train; ``sgd`` for a model with the Playground's L1 weights
            (the playground recipe's exact mode) is ``labkit.layers.PlaygroundSGD``, which
            kills weights the L1 step carries across 0. Every other case is Keras's own class,
            so a saved model reloads with plain Keras.
    """
    import keras

    params = {k: v for k, v in (params or {}).items() if v is not None}
    check(name, learning_rate, params)
    row = OPTIMIZERS[name]
    initial = learning_rate or row.learning_rate
    kwargs = {**row.params, **row.fixed, **params}
    cls = getattr(keras.optimizers, row.keras_class)
    if name == "sgd" and model is not None and has_pruned_weights(model):
        from labkit.layers import PlaygroundSGD as cls
    return cls(
        learning_rate=learning_rate_schedule(initial, schedule, steps_per_epoch), **kwargs)


def has_pruned_weights(model) -> bool:
    """Whether any of ``model``'s weights carries a regularizer that prunes at zero (the
    Playground's L1, ``labkit.layers.PlaygroundL1``)."""
    return any(getattr(getattr(v, "regularizer", None), "prunes", False)
               for v in model.trainable_variables)


def resolve_schedule(value: str | dict | None, epochs: int | None = None) -> dict[str, Any]:
    """``"cosine(alpha=0.1)"``, ``{"name": "cosine", "alpha": 0.1}`` or None → a checked dict
    with every argument spelled out, e.g. ``{"name": "cosine", "epochs": 20, "alpha": 0.1}``."""
    if value is None:
        return {"name": "constant"}
    if isinstance(value, str):
        try:
            name, args, kwargs = options.parse_call(value)
        except ValueError as err:
            raise LabkitError(f"--schedule: {err}. Example: --schedule 'exponential(rate=0.5, "
                              "every=10)'.") from None
        if args:
            raise LabkitError(f"--schedule takes keyword arguments only. Received: {value!r}")
    elif isinstance(value, dict):
        kwargs = dict(value)
        name = kwargs.pop("name", None)
    else:
        raise LabkitError(f"--schedule must be a name or a mapping. Received: {value!r}")
    if name not in SCHEDULES:
        raise LabkitError(f"--schedule must be one of {', '.join(SCHEDULES)}. Received: {name!r}")
    unknown = sorted(set(kwargs) - set(SCHEDULES[name]))
    if unknown:
        known = ", ".join(SCHEDULES[name]) or "none"
        raise LabkitError(f"--schedule {name} has no argument {', '.join(unknown)}. "
                          f"Known: {known}.")
    resolved = {"name": name, **SCHEDULES[name], **kwargs}
    if name == "cosine" and resolved["epochs"] is None:
        resolved["epochs"] = epochs
    _check_schedule(resolved)
    return resolved


def _check_schedule(s: dict[str, Any]) -> None:
    name = s["name"]

    def bad(key: str, allowed: str) -> LabkitError:
        return LabkitError(f"--schedule {name}: {key} must be {allowed}. Received: {s[key]!r}")

    for key in ("every", "tau", "epochs"):
        if key in s and s[key] is not None and (not _number(s[key]) or s[key] <= 0):
            raise bad(key, "> 0 (epochs)")
    for key in ("rate", "factor"):
        if key in s and (not _number(s[key]) or not 0 < s[key] <= 1):
            raise bad(key, "in (0, 1]")
    for key in ("patience", "cooldown"):
        if key in s and (isinstance(s[key], bool) or not isinstance(s[key], int) or s[key] < 0):
            raise bad(key, "an integer >= 0")
    for key in ("alpha", "min_delta", "min_lr"):
        if key in s and (not _number(s[key]) or s[key] < 0):
            raise bad(key, ">= 0")
    if name == "piecewise":
        bounds, factors = s["boundaries"], s["factors"]
        if not isinstance(bounds, list) or not all(_number(b) and b > 0 for b in bounds) \
                or bounds != sorted(bounds):
            raise bad("boundaries", "an increasing list of epochs > 0")
        if not isinstance(factors, list) or len(factors) != len(bounds) + 1 \
                or not all(_number(f) and f > 0 for f in factors):
            raise bad("factors", f"a list of {len(bounds) + 1} numbers > 0 (one more than "
                                 "boundaries)")


def learning_rate_schedule(initial: float, schedule: dict[str, Any] | None,
                           steps_per_epoch: int = 1):
    """The learning rate ε₀ = ``initial`` itself for constant and plateau schedules, else a Keras
    schedule over steps starting at it."""
    from keras.optimizers import schedules

    s = schedule or {"name": "constant"}
    steps = steps_per_epoch
    if s["name"] in ("constant", "plateau"):  # plateau acts through a callback
        return initial
    if s["name"] == "exponential":
        return schedules.ExponentialDecay(initial, s["every"] * steps, s["rate"])
    if s["name"] == "step":
        return schedules.ExponentialDecay(initial, s["every"] * steps, s["factor"], staircase=True)
    if s["name"] == "inverse-time":
        return schedules.InverseTimeDecay(initial, s["tau"] * steps, 1.0)
    if s["name"] == "cosine":
        return schedules.CosineDecay(initial, max(1, round(s["epochs"] * steps)), alpha=s["alpha"])
    if s["name"] == "piecewise":
        return schedules.PiecewiseConstantDecay([round(b * steps) for b in s["boundaries"]],
                                                [initial * f for f in s["factors"]])
    raise AssertionError(s["name"])


def expected_learning_rate(initial: float, schedule: dict[str, Any], epoch: float) -> float:
    """The schedule's value after ``epoch`` epochs from ε₀ = ``initial``, by its formula
    (plateau: ``initial``).

    The reference the tests hold Keras's schedules to, and what the docs quote.
    """
    s = schedule
    if s["name"] == "exponential":
        return initial * s["rate"] ** (epoch / s["every"])
    if s["name"] == "step":
        return initial * s["factor"] ** math.floor(epoch / s["every"])
    if s["name"] == "inverse-time":
        return initial / (1 + epoch / s["tau"])
    if s["name"] == "cosine":
        done = min(epoch, s["epochs"]) / s["epochs"]
        return initial * ((1 - s["alpha"]) * 0.5 * (1 + math.cos(math.pi * done)) + s["alpha"])
    if s["name"] == "piecewise":
        return initial * s["factors"][sum(epoch > b for b in s["boundaries"])]
    return initial


def _number(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)


def _positive(flag: str, value: Any) -> None:
    if not _number(value) or value <= 0:
        raise LabkitError(f"{flag} must be a number > 0. Received: {value!r}")
