"""``labkit describe``: a recipe's hyperparameters and model summary, without TensorFlow.

The summary is built on Keras's numpy backend when Keras is not loaded yet: the architecture and
parameter count are the same on every backend, and the numpy one starts in about half the time.
"""

from __future__ import annotations

import importlib.util
import os
from typing import Any

from labkit import data, registry
from labkit._lazy import is_loaded
from labkit.errors import LabkitError


def hyperparameter_rows(name: str, values: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    """``(name, default, current)`` for each hyperparameter; unknown keys are an error."""
    recipe = registry.get_recipe(name)
    recipe.check_hyperparameters(values)
    defaults = recipe.hyperparameters
    return [(key, default, values.get(key, default)) for key, default in defaults.items()]


def summary(name: str, dataset: str, values: dict[str, Any], *, input_shape: tuple | None = None,
            task: str | None = None, light_backend: bool = False,
            data_options: dict | None = None) -> tuple[str, int]:
    """The model summary text and parameter count of recipe ``name`` shaped for ``dataset``, or
    for ``input_shape`` and ``task`` where given (binary: two classes, one sigmoid unit).

    ``light_backend=True`` (the CLI's choice) loads Keras on its numpy backend if Keras is not
    loaded yet (Keras reads ``KERAS_BACKEND`` once, as it loads; the variable is set for that
    import only, so child processes and the caller see their own); a Python session that has
    loaded Keras keeps its backend.
    """
    if light_backend and not is_loaded("keras") and importlib.util.find_spec("jax"):
        _import_keras_on_numpy()
    spec = data.catalog_spec(dataset, data_options)
    task = task or spec.task
    num_classes = spec.num_classes
    if task != spec.task:  # another head for the same inputs
        num_classes = {"binary": 2, "regression": 1}.get(task, num_classes)
    model = registry.build_checked(name, tuple(input_shape or spec.input_shape), num_classes,
                                   values, task)
    lines: list[str] = []
    model.summary(print_fn=lambda text, line_break=True: lines.append(text))
    return "\n".join(lines), model.count_params()


def _import_keras_on_numpy() -> None:
    """Import Keras on its numpy backend (which borrows jax.lax), then put ``KERAS_BACKEND``
    back as it was."""
    before = os.environ.get("KERAS_BACKEND")
    os.environ["KERAS_BACKEND"] = "numpy"
    try:
        import keras  # noqa: F401
    finally:
        if before is None:
            del os.environ["KERAS_BACKEND"]
        else:
            os.environ["KERAS_BACKEND"] = before


def parse_shape(text: str | None) -> tuple[int, ...] | None:
    """``"150x150x3"`` → ``(150, 150, 3)``; None stays None."""
    if text is None:
        return None
    try:
        shape = tuple(int(part) for part in text.lower().split("x"))
    except ValueError:
        shape = ()
    if not shape or min(shape) < 1:
        raise LabkitError(f"--input-shape is sizes joined by x, e.g. 150x150x3. "
                          f"Received: {text!r}")
    return shape
