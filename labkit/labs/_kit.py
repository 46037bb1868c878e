"""What the labs share: registration, small data, fitting, figures and verdict wording.

A lab is three functions over one table: ``measure(quick, seed) -> DataFrame`` runs the
experiment; ``verdict(frame) -> str`` and ``plot(frame, path)`` read only that table, so the
verdict and the figure show exactly the numbers in the CSV. A module of ``labkit.labs`` declares
its labs with ``@lab(...)``; that is all a new lab needs to be listed, run, given a Makefile
target (``make lab-NAME``) and checked against docs/labs.md by the tests.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from labkit import lecture
from labkit._lazy import lazy_import
from labkit.plots import figure, save  # noqa: F401  re-exported for the lab modules

np = lazy_import("numpy")
pd = lazy_import("pandas")

keras = lazy_import("keras")

Measure = Callable[[bool, int], "pd.DataFrame"]


@dataclass(frozen=True)
class Lab:
    """One lecture claim as an experiment."""

    name: str
    order: int  # position in `labkit lab list` and `lab run all`: the lecture's order
    topics: tuple[int, ...]  # lecture topics, numbered as in the outline (labkit.lecture)
    detail: str  # what of those topics it shows
    claim: str
    seconds: int  # approximate full run time on 2 CPU cores
    measure: Measure
    verdict: Callable[[pd.DataFrame], str]
    plot: Callable[[pd.DataFrame, Path], None]

    @property
    def topic(self) -> str:
        """The lecture topics as shown to users: ``"6 Momentum"``."""
        return lecture.describe(self.topics, self.detail)


LABS: dict[str, Lab] = {}


def lab(name: str, *, order: int, topic: int | tuple[int, ...], claim: str, seconds: int,
        verdict, plot, detail: str = ""):
    """Register the decorated ``measure(quick, seed)`` function as lab ``name``.

    Args:
        order: where the lab stands in the list (unique); labs follow the lecture.
        topic: lecture topic number(s), as in the course outline; ``detail`` narrows it.
        claim: the lecture's claim the lab tests, one sentence.
        seconds: approximate time of the full version on 2 CPU cores.
        verdict: ``verdict(frame) -> str`` ending in :func:`holds`'s wording.
        plot: ``plot(frame, path)`` writing the PNG.
    """
    topics = lecture.topics(topic)
    taken = {other.order: other.name for other in LABS.values() if other.name != name}

    def register(measure: Measure) -> Measure:
        if order in taken:
            raise ValueError(f"Lab {name!r} has order {order}, as {taken[order]!r} already does.")
        LABS[name] = Lab(name, order, topics, detail, claim, seconds, measure, verdict, plot)
        return measure
    return register


HOLDS, NOT_SHOWN = "claim holds", "claim NOT supported on this run"  # how verdicts end


def holds(ok: bool) -> str:
    return HOLDS if ok else NOT_SHOWN


def digits(n_train: int | None = None, seed: int = 0, classes=None) -> dict[str, np.ndarray]:
    """labkit's digits splits scaled to [0, 1]; ``n_train`` examples per run (stratified),
    ``classes`` keeps only those labels (relabelled 0..k-1)."""
    from labkit import data
    from labkit.data import pipeline

    loaded = data.load("digits")
    splits = {"train": loaded.train, "val": loaded.val, "test": loaded.test}
    out = {}
    for split, (x, y) in splits.items():
        x = pipeline.model_input(x, loaded.spec.preprocessing)
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
    """``model`` compiled for classification with a labkit optimizer (see ``labkit.optim``), as
    ``labkit train`` compiles."""
    from labkit import optim, tasks

    return tasks.compile_for(model, optim.make(optimizer, learning_rate, params))


def fit(model, d: dict, *, epochs: int, batch_size: int = 32, callbacks=(), augment=None,
        seed: int | None = None, **kwargs) -> pd.DataFrame:
    """Fit a compiled model on ``d``'s training split through labkit's training pipeline
    (reshuffled every epoch, ``augment``-ed when given), validating on its validation split; the
    history as a table with an ``epoch`` column."""
    from labkit.data import pipeline

    train = pipeline.training_batches((d["x_train"], d["y_train"]), batch_size, seed=seed,
                                      augment=augment)
    history = model.fit(train, validation_data=(d["x_val"], d["y_val"]), epochs=epochs,
                        verbose=0, shuffle=False, callbacks=list(callbacks), **kwargs)
    frame = pd.DataFrame(history.history)
    frame.insert(0, "epoch", np.arange(1, len(frame) + 1))
    return frame


def accuracy(model, x, y) -> float:
    """Accuracy in inference mode (dropout off)."""
    return float((np.asarray(model(x, training=False)).argmax(axis=1) == y).mean())


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
