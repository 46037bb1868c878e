"""labkit: the labs of a neural-network course in Keras 3 / TensorFlow.

The Python front door, for notebooks and scripts; the CLI goes through the same functions::

    import labkit
    run = labkit.train("cnn", dataset="digits", epochs=5, filters=[16, 32])
    run.history          # a pandas DataFrame, a row per epoch
    run.metrics          # metrics.json: status, best epoch, test accuracy, ...
    run.plot()           # the learning curves (a notebook shows them inline)
    labkit.evaluate(run) # confusion matrix and per-class report on the test split
    run = labkit.load_run("runs/cnn-digits-20261127-101500")

Submodules load on first use (``labkit.labs.run("momentum", quick=True)``), and importing labkit
is cheap: TensorFlow loads only when a model is built or trained.
"""

from __future__ import annotations

import importlib
import os
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# TensorFlow's C++ logging past start-up (the CLI silences start-up itself: labkit._startup).
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from labkit.registry import build, get_recipe, list_recipes  # noqa: E402

if TYPE_CHECKING:
    from labkit.runs import Run

__all__ = ["__version__", "build", "evaluate", "get_recipe", "list_recipes", "load_run",
           "predict", "train"]

_SUBMODULES = {"augment", "callbacks", "checkpoint", "config", "data", "describe", "devices",
               "evaluation", "export", "labs", "lecture", "optim", "options", "phases", "plots",
               "prediction", "registry", "runs", "tasks", "training"}


def __getattr__(name: str):
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def train(recipe: str | None = None, *, config: str | os.PathLike | None = None, echo=print,
          **options: Any) -> Run:
    """Train ``recipe`` as ``labkit train`` does and return its run directory.

    Args:
        recipe: a recipe name (see :func:`list_recipes`); may come from ``config`` instead.
        config: a JSON or YAML config file (a run's config.json reruns it); ``options`` override.
        echo: where the run's messages go (``print``; ``lambda _: None`` for silence).
        **options: training options by their ``labkit train`` names (``dataset``, ``epochs``,
            ``optimizer``, ``learning_rate``, ``schedule``, …, ``hparams``, ``data_options``) and
            recipe hyperparameters by name (``filters=[16, 32]``).

    Returns:
        The :class:`labkit.runs.Run`: ``.history``, ``.metrics``, ``.model``, ``.plot()``.

    Raises:
        labkit.errors.LabkitError: a bad option, before anything is written.
        labkit.training.Interrupted: on Ctrl-C, after saving what finished.
    """
    import dataclasses

    from labkit._startup import import_tensorflow
    from labkit.config import TrainConfig, resolve_train_config

    fields = {f.name for f in dataclasses.fields(TrainConfig)} - {"recipe"}
    hparams = dict(options.pop("hparams", None) or {})
    data_options = dict(options.pop("data_options", None) or {})
    hparams.update({k: v for k, v in options.items() if k not in fields})
    flags = {k: v for k, v in options.items() if k in fields}
    resolved = resolve_train_config(recipe=recipe, config_file=config, flags=flags,
                                    hparams=hparams, data_options=data_options)
    import_tensorflow()  # quietly, as the CLI does
    from labkit import training

    return training.train(resolved, echo)


def evaluate(run: Run | str | os.PathLike, data_dir: str | None = None) -> dict:
    """Evaluate a run on its test split, as ``labkit evaluate`` does; returns the report (also
    saved in the run directory)."""
    from labkit._startup import import_tensorflow

    import_tensorflow()
    from labkit.evaluation import evaluate as evaluate_run

    return evaluate_run(getattr(run, "path", run), data_dir)


def predict(run: Run | str | os.PathLike, inputs, **options):
    """The run's predictions on ``inputs`` (image files, folders, globs, a .csv or an .npz) as
    a pandas DataFrame, as ``labkit predict`` prints them; ``options``: ``model`` (final, best,
    last), ``top``, ``threshold``, ``skip_bad`` (see :func:`labkit.prediction.predict`)."""
    from labkit._startup import import_tensorflow

    import_tensorflow()
    from labkit.prediction import predict as predict_run

    return predict_run(getattr(run, "path", run), inputs, **options)


def load_run(path: str | os.PathLike) -> Run:
    """The run directory at ``path``: ``.config``, ``.history``, ``.metrics``, ``.model``,
    ``.plot()``."""
    from labkit.runs import open_run

    return open_run(path)
