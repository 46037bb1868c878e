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

import contextlib
import importlib
import os
import threading
from typing import TYPE_CHECKING, Any

# TensorFlow's C++ logging past start-up (the CLI silences start-up itself: labkit._startup).
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from labkit.registry import build, get_recipe, list_recipes  # noqa: E402
from labkit.version import __version__  # noqa: E402

if TYPE_CHECKING:
    from labkit.runs import Run

__all__ = ["__version__", "build", "compare", "evaluate", "get_recipe", "list_recipes",
           "load_run", "predict", "quiet_tensorflow", "sweep", "train"]

_SUBMODULES = {"augment", "callbacks", "checkpoint", "comparison", "config", "data", "describe",
               "devices", "evaluation", "export", "explain", "formats", "interrupts", "labs",
               "layers", "layout", "lecture", "optim", "options", "phases", "plots",
               "prediction", "registry", "runs", "sweeps", "tasks", "training"}


def __getattr__(name: str):
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def train(recipe: str | None = None, *, config: str | os.PathLike | None = None, echo=print,
          stop: threading.Event | None = None, resume: str | os.PathLike | None = None,
          **options: Any) -> Run:
    """Train ``recipe`` as ``labkit train`` does and return its run directory.

    Args:
        recipe: a recipe name (see :func:`list_recipes`); may come from ``config`` instead.
        resume: an interrupted run's directory: continue it from its last finished epoch with
            its saved config (``labkit train --resume``); no recipe, config or options then.
        config: a JSON or YAML config file (a run's config.json reruns it); ``options`` override.
        echo: where the run's messages go (``print``); None: nowhere, Keras's per-epoch
            lines included (a loop of runs in a notebook).
        stop: a ``threading.Event``; setting it (from another thread, a timer, a button's
            callback) stops training at the next epoch boundary, the finished epochs saved.
            Ctrl-C (a notebook's interrupt) stops it too; the process's own Ctrl-C handling
            is back once ``train`` returns (see :mod:`labkit.interrupts`).
        **options: training options by their ``labkit train`` names (``dataset``, ``epochs``,
            ``optimizer``, ``learning_rate``, ``schedule``, …, ``hparams``, ``data_options``) and
            recipe hyperparameters by name (``filters=[16, 32]``).

    Returns:
        The :class:`labkit.runs.Run`: ``.history``, ``.metrics``, ``.model``, ``.plot()``.

    Raises:
        labkit.errors.LabkitError: a bad option, before anything is written.
        labkit.training.Interrupted: on Ctrl-C or ``stop``, after saving what finished; its
            ``run`` continues with ``labkit.train(resume=err.run.path)``.
    """
    from labkit._startup import import_tensorflow
    from labkit.interrupts import stop_on_signals

    if resume is not None:
        given = [name for name, value in (("recipe", recipe), ("config", config))
                 if value is not None] + sorted(options)
        if given:
            from labkit.errors import LabkitError

            raise LabkitError("resume continues a run with its saved config; drop "
                              f"{', '.join(given)}.")
    else:
        resolved = _config(recipe, config, options)
    import_tensorflow()  # quietly, as the CLI does
    from labkit import training

    with stop_on_signals(stop) as stop, _silenced(echo is None):
        echo = echo or (lambda line: None)
        return training.resume(resume, echo, stop) if resume is not None \
            else training.train(resolved, echo, stop)


@contextlib.contextmanager
def _silenced(silent: bool):
    """While inside, if ``silent``: standard output goes nowhere (Keras's progress lines)."""
    if not silent:
        yield
        return
    with open(os.devnull, "w") as nowhere, contextlib.redirect_stdout(nowhere):
        yield


def quiet_tensorflow():
    """Start TensorFlow now, with its C++ start-up notices hidden, and return it (None on
    another Keras backend). labkit's own calls do this; call it first in a notebook or script
    that imports Keras itself: an ``import keras`` after it prints nothing."""
    from labkit._startup import import_tensorflow

    return import_tensorflow()


def _config(recipe, config, options: dict[str, Any], ignore: tuple[str, ...] = ()):
    """The resolved TrainConfig of ``labkit.train``'s arguments: options by their config names,
    the rest recipe hyperparameters."""
    import dataclasses

    from labkit.config import TrainConfig, resolve_train_config

    fields = {f.name for f in dataclasses.fields(TrainConfig)} - {"recipe"}
    hparams = dict(options.pop("hparams", None) or {})
    data_options = dict(options.pop("data_options", None) or {})
    hparams.update({k: v for k, v in options.items() if k not in fields})
    flags = {k: v for k, v in options.items() if k in fields}
    return resolve_train_config(recipe=recipe, config_file=config, flags=flags, hparams=hparams,
                                data_options=data_options, ignore=ignore)


def sweep(recipe: str | None = None, *, grid: dict | None = None, ranges: dict | None = None,
          choices: dict | None = None, random: int | None = None,
          max_trials: int | None = None, max_time: float | None = None,
          resume: str | os.PathLike | None = None, config: str | os.PathLike | None = None,
          echo=print, stop: threading.Event | None = None, cluster: str | None = None,
          **options: Any):
    """Run a hyperparameter sweep as ``labkit sweep`` does; returns its results (a pandas
    DataFrame, best trial first; the sweep folder is ``frame.attrs["sweep"]``).

    Example::

        labkit.sweep("mlp", dataset="digits", epochs=10, name="lr-dropout",
                     grid={"learning_rate": [0.1, 0.01], "dropout": [0, 0.5]})
        labkit.sweep("cnn", random=8, ranges={"learning_rate": "loguniform(1e-4,1e-1)"},
                     choices={"optimizer": ["sgd", "adam"]})
        labkit.sweep(resume="runs/lr-dropout")

    ``options`` are ``labkit.train``'s (``name`` names the sweep folder); ``max_time`` is in
    seconds; ``stop`` as for :func:`train` (the running trial stops, the sweep resumes later);
    ``cluster``: a Dask scheduler's address or ``local:N`` (see :mod:`labkit.cluster`).
    See :mod:`labkit.sweeps`.
    """
    from labkit import cluster as trials
    from labkit import sweeps
    from labkit._startup import import_tensorflow
    from labkit.interrupts import stop_on_signals

    if resume is not None:
        import_tensorflow()
        with stop_on_signals(stop) as stop:
            done = trials.resume(resume, echo, max_time, stop, cluster)
    else:
        space, max_trials = sweeps.space_and_limit(config, grid, ranges, choices, random,
                                                   max_trials)
        name = options.pop("name", None)
        created = sweeps.create(_config(recipe, config, options, ignore=("sweep",)), space,
                                name=name, max_trials=max_trials)
        import_tensorflow()
        with stop_on_signals(stop) as stop:
            done = trials.run(created, echo, max_time, stop, cluster)
    frame = sweeps.results(done)
    frame.attrs["sweep"] = done.path
    return frame


def compare(runs, metric: str | None = None, all_options: bool = False):
    """Runs side by side as ``labkit compare`` shows them (paths, globs or Run objects): a
    pandas DataFrame of the options that differ and each run's metrics (see
    :func:`labkit.comparison.compare`)."""
    from labkit.comparison import compare as compare_runs
    from labkit.comparison import expand

    listed = [runs] if isinstance(runs, str | os.PathLike) else list(runs)
    run_list = [r for item in listed for r in ([item] if hasattr(item, "path") else
                                               expand([item]))]
    return compare_runs(run_list, metric, all_options)


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
