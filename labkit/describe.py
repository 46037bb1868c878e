"""``labkit describe``: a recipe's hyperparameters and model summary, without TensorFlow.

The summary is built on Keras's numpy backend when Keras is not loaded yet: the architecture and
parameter count are the same on every backend, and the numpy one starts in about half the time.
"""

from __future__ import annotations

import os
from typing import Any

from labkit import data, registry
from labkit._lazy import is_loaded
from labkit.errors import LabkitError


def hyperparameter_rows(name: str, values: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    """``(name, default, current)`` for each hyperparameter; unknown keys are an error."""
    recipe = registry.get_recipe(name)
    defaults = recipe.hyperparameters
    unknown = sorted(set(values) - set(defaults))
    if unknown:
        raise LabkitError(f"Recipe {name!r} has no hyperparameter {', '.join(map(repr, unknown))}. "
                          f"Known: {', '.join(defaults)}.")
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
    try:
        model = registry.build(name, input_shape=spec.input_shape, num_classes=spec.num_classes,
                               **values)
    except (ValueError, TypeError) as err:
        raise LabkitError(str(err)) from None
    lines: list[str] = []
    model.summary(print_fn=lambda text, line_break=True: lines.append(text))
    return "\n".join(lines), model.count_params()
