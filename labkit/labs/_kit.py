"""What the labs share: registration, small data, fitting, figures and verdict wording.

A lab is three functions over one table: ``measure(quick, seed) -> DataFrame`` runs the
experiment; ``verdict(frame) -> str`` and ``plot(frame, path)`` read only that table, so the
verdict and the figure show exactly the numbers in the CSV.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from labkit._lazy import lazy_import

keras = lazy_import("keras")

Measure = Callable[[bool, int], pd.DataFrame]


@dataclass(frozen=True)
class Lab:
    """One lecture claim as an experiment."""

    name: str
    topic: str  # lecture topic, as in the outline
    claim: str
    seconds: int  # approximate full run time on 2 CPU cores
    measure: Measure
    verdict: Callable[[pd.DataFrame], str]
    plot: Callable[[pd.DataFrame, Path], None]


LABS: dict[str, Lab] = {}


def lab(name: str, *, topic: str, claim: str, seconds: int, verdict, plot):
    """Register the decorated ``measure(quick, seed)`` function as lab ``name``."""
    def register(measure: Measure) -> Measure:
        LABS[name] = Lab(name, topic, claim, seconds, measure, verdict, plot)
        return measure
    return register


def holds(ok: bool) -> str:
    return "claim holds" if ok else "claim NOT supported on this run"


def digits(n_train: int | None = None, seed: int = 0, classes=None) -> dict[str, np.ndarray]:
    """labkit's digits splits scaled to [0, 1]; ``n_train`` examples per run (stratified),
    ``classes`` keeps only those labels (relabelled 0..k-1)."""
    from labkit import data

    loaded = data.load("digits")
    splits = {"train": loaded.train, "val": loaded.val, "test": loaded.test}
    out = {}
    for split, (x, y) in splits.items():
        x = data.model_input(x, loaded.spec)
        if classes is not None:
            keep = np.isin(y, classes)
            x, y = x[keep], np.searchsorted(np.asarray(classes), y[keep])
        out[f"x_{split}"], out[f"y_{split}"] = x, y
    if n_train is not None and n_train < len(out["y_train"]):
        rng = np.random.default_rng(seed)
        labels = np.unique(out["y_train"])
        per = max(1, n_train // len(labels))
        keep = np.concatenate([rng.permutation(np.flatnonzero(out["y_train"] == c))[:per]
                               for c in labels])
        out["x_train"], out["y_train"] = out["x_train"][keep], out["y_train"][keep]
    return out


def build(recipe: str, num_classes: int = 10, input_shape=(8, 8, 1), **hparams):
    from labkit import registry

    return registry.build(recipe, input_shape=input_shape, num_classes=num_classes, **hparams)


def compiled(model, optimizer: str = "adam", learning_rate: float | None = None, **params):
    """``model`` compiled for classification with a labkit optimizer (see ``labkit.optim``)."""
    from labkit import optim

    model.compile(optimizer=optim.make(optimizer, learning_rate, params),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def fit(model, d: dict, *, epochs: int, batch_size: int = 32, callbacks=(), **kwargs
        ) -> pd.DataFrame:
    """Fit a compiled model on ``d``'s training split, reshuffled every epoch (as labkit train
    does), validating on its validation split; the history as a table with an ``epoch`` column."""
    import tensorflow as tf

    train = tf.data.Dataset.from_tensor_slices((d["x_train"], d["y_train"])).shuffle(
        len(d["y_train"]), reshuffle_each_iteration=True).batch(batch_size)
    history = model.fit(train, validation_data=(d["x_val"], d["y_val"]), epochs=epochs,
                        verbose=0, shuffle=False, callbacks=list(callbacks), **kwargs)
    frame = pd.DataFrame(history.history)
    frame.insert(0, "epoch", np.arange(1, len(frame) + 1))
    return frame


def accuracy(model, x, y) -> float:
    """Accuracy in inference mode (dropout off)."""
    return float((np.asarray(model(x, training=False)).argmax(axis=1) == y).mean())


def figure(ncols: int = 1, nrows: int = 1, size=(4.5, 3.6)):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(nrows, ncols, figsize=(size[0] * ncols, size[1] * nrows),
                             squeeze=False)
    return fig, axes


def save(fig, path: Path) -> None:
    import matplotlib.pyplot as plt

    from labkit.runs import atomic_path

    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100)
    plt.close(fig)


def curves(ax, frame: pd.DataFrame, group: str, y: str, *, title: str = "", log: bool = False):
    """One line per value of ``group``: ``y`` against ``epoch`` (or ``step``)."""
    x = "epoch" if "epoch" in frame else "step"
    for key, part in frame.groupby(group, sort=False):
        ax.plot(part[x], part[y], label=str(key))
    ax.set(xlabel=x, ylabel=y, title=title or y, yscale="log" if log else "linear")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)


def clean_train_accuracy(d: dict):
    """A callback recording, per epoch, the training accuracy in inference mode (dropout and
    augmentation off), comparable with validation accuracy; read ``.values`` after fitting."""

    class Recorder(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.values: list[float] = []

        def on_epoch_end(self, epoch, logs=None):
            self.values.append(accuracy(self.model, d["x_train"], d["y_train"]))

    return Recorder()


def learning_curves(group: str, *panels: tuple[str, str, bool]):
    """A lab's plot function: a panel per ``(column, title, log_scale)``, each with a line per
    value of ``group`` (optimizer, net, …) against the epoch."""
    def plot(frame: pd.DataFrame, path: Path) -> None:
        fig, axes = figure(len(panels))
        for ax, (column, title, log) in zip(axes[0], panels, strict=True):
            curves(ax, frame, group, column, title=title, log=log)
        save(fig, path)
    return plot
