"""Run directories: ``runs/<name>/`` with config, history, metrics, model and plots.

Create one (:func:`create_run`), open one (:func:`open_run`), read it back (:class:`Run`: config,
spec, metrics, history, model), load its models (:func:`load_model`, :func:`inference_model`),
and keep two processes from training the same one (:func:`lock`). What the files are called and
how an older run is read is :mod:`labkit.layout`'s; every file is written through
:mod:`labkit.files`, so it is whole or absent whenever the process stops.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from labkit import layout
from labkit.errors import LabkitError

WRAPPER = "with_preprocessing"  # name of the model that puts the preprocessing first
SAMPLE_SIZE = 256  # raw held-out examples a run keeps (layout.SAMPLES) to check exports


@dataclass(frozen=True)
class Run:
    """A run directory on disk: ``run.config``, ``run.spec`` (its data), ``run.metrics``,
    ``run.history`` (a DataFrame), ``run.model`` (the trained Keras model) and ``run.plot()``
    (the learning curves)."""

    path: Path

    def file(self, name: str) -> Path:
        return self.path / name

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def config(self) -> dict:
        """config.json, as this labkit's format (:func:`labkit.layout.migrate`)."""
        return layout.migrate(self._json(layout.CONFIG), str(self.file(layout.CONFIG)))

    @functools.cached_property
    def spec(self):
        """The :class:`~labkit.data.base.DatasetSpec` the run recorded (input shape, task, class
        and feature names, preprocessing); for a run that recorded none, its dataset's, loaded
        once."""
        from labkit.data.base import DatasetSpec, Preprocessing

        config = self.config
        recorded = config["data_spec"]
        if recorded is None:  # a format-1 run
            return self.load_data().spec
        prep = Preprocessing.from_dict(recorded.get("preprocessing", {}))
        return DatasetSpec(config.get("dataset", ""), tuple(recorded["input_shape"]),
                           recorded["num_classes"], task=recorded["task"],
                           class_names=tuple(recorded.get("class_names", ())), scale=prep.scale,
                           mean=prep.mean, variance=prep.variance,
                           feature_names=tuple(recorded.get("feature_names", ())),
                           target_mean=tuple((recorded.get("targets") or {}).get("mean", ()))
                           or None,
                           target_std=tuple((recorded.get("targets") or {}).get("std", ()))
                           or None)

    @property
    def input_range(self) -> dict | None:
        """The raw range of the training inputs per channel or feature
        (:func:`labkit.ranges.observed`), or None (an older run, a streamed dataset)."""
        return (self.config.get("data_spec") or {}).get("input_range")

    def load_data(self, data_dir: str | None = None):
        """The run's dataset, split and given the task as training had them (``data_dir``: the
        TFDS folder, if it moved since)."""
        from labkit import data

        config = self.config
        return data.load(config["dataset"], validation_split=config["validation_split"],
                         data_dir=data_dir or config.get("data_dir"),
                         options=config.get("data_options") or {}, task=config.get("task"))

    def samples(self):
        """``(x, y)``: up to :data:`SAMPLE_SIZE` raw held-out examples the run kept
        (samples.npz), to check exports without the dataset; for a run that kept none (made
        before samples.npz existed), the start of its test (else training) split."""
        import numpy as np

        path = self.file(layout.SAMPLES)
        if path.exists():
            from labkit.trust import MAX_SAMPLES_BYTES, load_npz

            kept = load_npz(path, MAX_SAMPLES_BYTES)
            if not {"x", "y"} <= set(kept):
                raise LabkitError(f"{path} is damaged: it should hold the arrays x and y.")
            return kept["x"].astype("float32"), kept["y"]
        from labkit.data import pipeline

        loaded = self.load_data()
        prep = None if self.raw_inputs else loaded.spec.preprocessing
        x, y = pipeline.arrays(loaded.test if loaded.test is not None else loaded.train,
                               prep=prep)
        return x[:SAMPLE_SIZE].astype("float32"), np.asarray(y)[:SAMPLE_SIZE]

    @property
    def raw_inputs(self) -> bool:
        """Whether model.keras takes raw values (see :data:`labkit.layout.RAW`)."""
        return self.config["model_inputs"] == layout.RAW

    @property
    def metrics(self) -> dict:
        return self._json(layout.METRICS) if self.file(layout.METRICS).exists() else {}

    @property
    def history(self):
        """history.csv as a pandas DataFrame, a row per finished epoch (empty before the first)."""
        import pandas as pd

        path = self.file(layout.HISTORY)
        if not path.exists():
            return pd.DataFrame()
        try:
            history = pd.read_csv(path)
        except (ValueError, UnicodeDecodeError) as err:  # pandas' parse errors are ValueErrors
            raise LabkitError(f"{path} is damaged: {str(err).splitlines()[0]}") from None
        except OSError as err:
            from labkit.files import FileFault

            raise FileFault(path, err) from None
        if layout.EPOCH not in history.columns:
            raise LabkitError(f"{path} is damaged: it has no {layout.EPOCH} column.")
        return history

    @functools.cached_property
    def model(self):
        """The trained model (``model.keras``), loaded once: what ``predict`` runs, raw
        inputs in (images as stored, features as in the CSV)."""
        return load_model(self)

    @property
    def network(self):
        """The recipe's network inside :attr:`model`, after the input preprocessing labkit
        adds: its layers have the recipe's names (``network.get_layer("fc1")``)."""
        return unwrap(self.model)

    def plot(self):
        """The learning curves as a matplotlib Figure (a notebook shows it inline)."""
        from labkit import plots

        return plots.curves_figure(self.history, f"{self.name} ({self.config.get('recipe')})")

    def _json(self, name: str) -> dict:
        try:
            return json.loads(self.file(name).read_text())
        except FileNotFoundError:
            raise LabkitError(f"{self.path} has no {name}; is it a labkit run directory?") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise LabkitError(f"{self.file(name)} is damaged (not valid JSON: {err}).") from None
        except OSError as err:
            from labkit.files import FileFault

            raise FileFault(self.file(name), err) from None


def open_run(path: str | os.PathLike) -> Run:
    """The run at ``path``; a missing folder or one without config.json is a LabkitError."""
    path = Path(path)
    if not path.is_dir():
        raise LabkitError(f"Run directory {str(path)!r} does not exist. See `labkit runs`.")
    if not (path / layout.CONFIG).is_file():
        raise LabkitError(f"{str(path)!r} is not a labkit run directory (no {layout.CONFIG}).")
    run = Run(path)
    run.config  # noqa: B018 — a config from a newer labkit, or a damaged one, fails here
    return run


def checked_child(parent: str | os.PathLike, name: str, option: str = "--name") -> Path:
    """``parent/name`` for a name that stays inside ``parent``: no separator, not empty, not
    starting with a dot."""
    if not name or "/" in name or "\\" in name or name.startswith(".") or "\0" in name:
        raise LabkitError(f"{option} must be a plain folder name (no '/', not starting with "
                          f"'.'). Received: {name!r}")
    return Path(parent) / name


def create_run(runs_dir: str | os.PathLike, name: str) -> Run:
    """Make a fresh ``runs_dir/name``; an existing name gets a ``-2``, ``-3``… suffix."""
    from labkit.files import FileFault

    runs_dir = Path(runs_dir)
    candidate, k = runs_dir / name, 1
    try:
        runs_dir.mkdir(parents=True, exist_ok=True)
        while True:
            try:
                candidate.mkdir()
                return Run(candidate)
            except FileExistsError:
                k += 1
                candidate = runs_dir / f"{name}-{k}"
    except OSError as err:
        raise FileFault(err.filename or candidate, err) from None


def load_model(run: Run, name: str = layout.MODEL, compile: bool = True):
    """The run's trained ``model.keras`` (or checkpoint ``name``), through
    :func:`labkit.trust.load_keras`; missing, damaged or untrusted is a LabkitError."""
    from labkit.trust import load_keras

    path = run.file(name)
    if not path.is_file():
        status = run.metrics.get("status", "unfinished")
        raise LabkitError(f"{run.path} has no {name} (run status: {status}).")
    return load_keras(path, compile=compile)


def with_preprocessing(model, prep):
    """``model`` behind ``prep``'s Keras layers (``Rescaling`` layers): a model
    that takes raw values and answers as ``model`` does on preprocessed ones. ``model`` itself
    when ``prep`` changes nothing."""
    import keras

    if prep.identity:
        return model
    inputs = keras.Input(model.input_shape[1:], name="raw_inputs")
    x = inputs
    for layer in prep.layers():
        x = layer(x)
    return keras.Model(inputs, model(x), name=WRAPPER)


def inference_model(run: Run, which: str = "final"):
    """The run's ``final`` (model.keras), ``best`` or ``last`` model, taking raw inputs: the
    checkpoints (and a format-1 run's model.keras) get the run's preprocessing in front."""
    if which not in layout.MODELS:
        raise LabkitError(f"--model must be one of {', '.join(layout.MODELS)}. "
                          f"Received: {which!r}")
    model = load_model(run, layout.MODELS[which], compile=False)
    if which == "final" and run.raw_inputs:
        return model
    return with_preprocessing(model, run.spec.preprocessing)


def copy_run(run: Run, folder: str | os.PathLike) -> Path:
    """A copy of ``run``'s directory inside ``folder`` (its lock file left out); its path."""
    import shutil

    target = Path(folder) / run.name
    shutil.copytree(run.path, target, ignore=shutil.ignore_patterns(layout.LOCK))
    return target


def save_samples(run: Run, split) -> None:
    """Keep up to :data:`SAMPLE_SIZE` raw examples of ``split`` (arrays or a ``tf.data``
    dataset; the validation split, say) in the run, so exports are checked without the
    dataset."""
    import numpy as np

    from labkit.data import pipeline
    from labkit.files import atomic_path

    if split is None:
        return
    if isinstance(split, tuple):
        x, y = split[0][:SAMPLE_SIZE], np.asarray(split[1])[:SAMPLE_SIZE]
    else:
        x, y = pipeline.arrays(split.take(SAMPLE_SIZE))
    with atomic_path(run.file(layout.SAMPLES)) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, x=x, y=y)


def unwrap(model):
    """The trained model inside :func:`with_preprocessing`'s (``model`` if it is not one)."""
    return model.layers[-1] if model.name == WRAPPER else model


@contextlib.contextmanager
def lock(run: Run) -> Iterator[None]:
    """Hold ``run``'s lock file while training it; a second process is refused with a
    LabkitError. A lock left by a process that no longer exists (kill -9, power cut) is stale
    and taken over."""
    path = run.file(layout.LOCK)
    for _ in range(2):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            break
        except FileExistsError:
            holder = _lock_holder(path)
            if holder is not None and holder != os.getpid() and _alive(holder):
                raise LabkitError(f"{run.path} is being trained by process {holder}; wait for it "
                                  f"to finish or stop it (kill {holder}) first.") from None
            with contextlib.suppress(FileNotFoundError):
                path.unlink()  # stale: its process is gone
    else:
        raise LabkitError(f"Could not take the lock {path}; another process keeps creating it.")
    try:
        os.write(fd, str(os.getpid()).encode())
        os.close(fd)
        yield
    finally:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def _lock_holder(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError as err:
        return err.errno == errno.EPERM  # exists, owned by someone else
    return True
