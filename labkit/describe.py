"""``labkit describe``: a recipe's hyperparameters and model summary, without TensorFlow.

The summary is built on Keras's numpy backend when Keras is not loaded yet: the architecture and
parameter count are the same on every backend, and the numpy one starts in about half the time.
"""

from __future__ import annotations

import os
from typing import Any

from labkit import data, registry
from labkit._lazy import is_loaded


def hyperparameter_rows(name: str, values: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    """``(name, default, current)`` for each hyperparameter; unknown keys are an error."""
    recipe = registry.get_recipe(name)
    recipe.check_hyperparameters(values)
    defaults = recipe.hyperparameters
    return [(key, default, values.get(key, default)) for key, default in defaults.items()]


def summary(name: str, dataset: str, values: dict[str, Any], *,
            light_backend: bool = False) -> tuple[str, int]:
    """The model summary text and parameter count of recipe ``name`` shaped for ``dataset``.

    ``light_backend=True`` (the CLI's choice) loads Keras on its numpy backend if Keras is not
    loaded yet; a Python session keeps its own backend.
    """
    if light_backend and not is_loaded("keras"):
        os.environ["KERAS_BACKEND"] = "numpy"
    spec = data.catalog_spec(dataset)
    model = registry.build_checked(name, spec.input_shape, spec.num_classes, values, spec.task)
    lines: list[str] = []
    model.summary(print_fn=lambda text, line_break=True: lines.append(text))
    return "\n".join(lines), model.count_params()
