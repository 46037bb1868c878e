"""What the labs share: registration, small data, fitting, figures and verdict wording.

A lab is three functions over one table: ``measure(quick, seed) -> DataFrame`` runs the
experiment; ``verdict(frame) -> Finding`` and ``plot(frame, path)`` read only that table, so the
verdict and the figure show exactly the numbers in the CSV. A :class:`Finding` carries the
numbers in words, whether they show the claim, the claim's margin (one number, so several seeds
can report a range) and the run's own noise in the margin's units (so a quick run can tell
"contradicted" from "too small to tell"). A module of ``labkit.labs`` declares
its labs with ``@lab(...)``; that is all a new lab needs to be listed, run, given a Makefile
target (``make lab-NAME``) and checked against docs/labs.md by the tests.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from labkit import lecture
from labkit._lazy import lazy_import
from labkit.plots import figure, integer_epochs, save  # noqa: F401  re-exported for the lab modules

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
    verdict: Callable[[pd.DataFrame], Finding]
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
        verdict: ``verdict(frame) -> Finding`` (see :func:`finding`).
        plot: ``plot(frame, path)`` writing the PNG.

    A name or an order already registered is a ValueError, as for recipes.
    """
    topics = lecture.topics(topic)
    taken = {other.order: other.name for other in LABS.values() if other.name != name}

    def register(measure: Measure) -> Measure:
        if name in LABS and LABS[name].measure is not measure:
            raise ValueError(f"A lab named {name!r} is already registered.")
        if order in taken:
            raise ValueError(f"Lab {name!r} has order {order}, as {taken[order]!r} already does.")
        LABS[name] = Lab(name, order, topics, detail, claim, seconds, measure, verdict, plot)
        return measure
    return register


HOLDS, NOT_SHOWN = "claim holds", "claim NOT supported on this run"  # how verdicts end
INCONCLUSIVE = "inconclusive at this size"
NOISE_FACTOR = 2  # a quick run's effect counts when it is this many times its noise


@dataclass(frozen=True)
class Finding:
    """What one run of a lab shows, computed from its table by the lab's ``verdict``.

    ``margin`` is the claim's effect as one number, in the words of ``margin_text`` (which has
    ``{}`` where the number goes, formatted with ``spec``): a ratio (no effect at ``null=1``)
    or a difference (``null=0``), larger in the claim's direction. ``noise`` is the run's own
    scatter in the same units, measured from the run (the spread of a curve over its last
    epochs, the binomial error of an accuracy, the spread over draws); 0 for exact
    measurements.
    """

    text: str
    ok: bool
    margin: float
    margin_text: str
    spec: str = ".2f"
    null: float = 0.0
    noise: float = 0.0

    def margin_words(self, value: float | None = None) -> str:
        return self.margin_text.format(format(self.margin if value is None else value, self.spec))

    @property
    def clear(self) -> bool:
        """Whether the effect (or its absence) stands out of the run's noise: the margin is at
        least ``NOISE_FACTOR`` times the noise away from no effect."""
        return abs(self.margin - self.null) > NOISE_FACTOR * self.noise

    def status(self, quick: bool = False) -> str:
        """:data:`HOLDS`, :data:`NOT_SHOWN` or :data:`INCONCLUSIVE`. A full run holds or not
        as its numbers say; a quick one says so only when its margin is clear of its noise, and
        is otherwise :data:`INCONCLUSIVE`."""
        if not quick or self.clear and self.ok == (self.margin > self.null):
            return HOLDS if self.ok else NOT_SHOWN
        return INCONCLUSIVE

    def holds(self, quick: bool = False) -> bool:
        return self.status(quick) == HOLDS

    def verdict(self, quick: bool = False) -> str:
        """The verdict line (without the lab's name): the numbers, the margin and its noise,
        then the :meth:`status` in words."""
        noise = (f" ± {format(self.noise, self.spec.lstrip('+'))} noise" if np.isfinite(self.noise)
                 else " (noise not measurable: too few epochs)") if self.noise else ""
        status = self.status(quick)
        if status == INCONCLUSIVE:
            status += f": the effect is within {NOISE_FACTOR}× the noise this quick run measured"
        return f"{self.text}; margin: {self.margin_words()}{noise} — {status}"


def finding(text: str, ok: bool, margin: float, margin_text: str, **how) -> Finding:
    """A lab's verdict: the numbers in words, whether they show the claim, and its margin (see
    :class:`Finding` for ``spec``, ``null`` and ``noise``)."""
    return Finding(text, bool(ok), float(margin), margin_text, **how)


def late(series, share: float = 0.25):
    """The last ``share`` of a curve, at least its last 3 points: where training has settled."""
    values = np.asarray(series, dtype=float)
    return values[-max(3, int(len(values) * share)):]


def late_noise(*curves, share: float = 0.25) -> float:
    """The noise of a difference between curves' late values: their standard deviations over
    the last ``share`` of the epochs (at least 3), added in quadrature; infinite when a curve
    is too short to show its noise (so no effect is clear)."""
    if any(len(late(c, share)) < 2 for c in curves):
        return float("inf")
    return float(np.sqrt(sum(late(c, share).std() ** 2 for c in curves)))


def accuracy_curves_noise(first, second, examples: int) -> float:
    """The noise of a difference between two accuracy curves' late means (see :func:`late`):
    their late spread and the binomial error of accuracies measured on ``examples``."""
    p = (late(first).mean() + late(second).mean()) / 2
    return float(np.hypot(late_noise(first, second), accuracy_noise(p, examples)))


def accuracy_noise(p: float, n: int, compared: int = 2) -> float:
    """The standard error of a difference of ``compared`` accuracies near ``p``, each measured
    on ``n`` examples (binomial)."""
    p = min(max(float(p), 1 / max(n, 1)), 1 - 1 / max(n, 1))
    return float(np.sqrt(compared * p * (1 - p) / max(n, 1)))


def digits(n_train: int | None = None, seed: int = 0, classes=None,
           label_noise: float = 0.0) -> dict[str, np.ndarray]:
    """labkit's digits splits scaled to [0, 1]; ``n_train`` examples per run (stratified),
    ``classes`` keeps only those labels (relabelled 0..k-1); ``label_noise`` gives that share of
    the training examples a wrong label (drawn with ``seed``), as hand labelling does: a net
    that memorises its training set then shows it plainly on the validation set."""
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
    if label_noise:
        rng = np.random.default_rng([seed, 1])
        y, k = out["y_train"], int(out["y_train"].max()) + 1
        wrong = rng.random(len(y)) < label_noise
        out["y_train"] = np.where(wrong, (y + rng.integers(1, k, len(y))) % k, y)
    return out


def placed(x, y, rng, canvas: int, copies: int = 1, noise: float = 0.0):
    """Each image of ``x`` (labels ``y``) ``copies`` times at a random place on a
    ``canvas``-sided square of uniform noise in [0, ``noise``] (black for 0): digits that may
    be anywhere, as handwriting on a page is."""
    side = x.shape[1]
    out = rng.uniform(0, noise, (len(x) * copies, canvas, canvas, 1)).astype("float32")
    for k, (i, j) in enumerate(rng.integers(0, canvas - side + 1, (len(out), 2))):
        window = out[k, i:i + side, j:j + side]
        np.maximum(window, x[k % len(x)], out=window)
    return out, np.tile(y, copies)


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
    history as a table with an ``epoch`` column and ``val_examples`` (the validation split's
    size, for the binomial noise of its accuracies)."""
    from labkit import progress
    from labkit.callback_list import EpochCallbacks
    from labkit.data import pipeline

    train = pipeline.training_batches((d["x_train"], d["y_train"]), batch_size, seed=seed,
                                      augment=augment)
    shown = progress.current()  # the lab's bar: this fit's epochs beside its count of fits
    epoch_shown = keras.callbacks.LambdaCallback(
        on_epoch_end=lambda epoch, logs: shown.set_postfix_str(f"epoch {epoch + 1}/{epochs}",
                                                               refresh=False))
    history = model.fit(train, validation_data=(d["x_val"], d["y_val"]), epochs=epochs,
                        verbose=0, shuffle=False, **kwargs,
                        callbacks=EpochCallbacks([*callbacks, epoch_shown], model=model,
                                                 epochs=epochs, history=True))
    shown.update(1)
    frame = pd.DataFrame(history.history)
    frame.insert(0, "epoch", np.arange(1, len(frame) + 1))
    frame["val_examples"] = len(d["y_val"])
    return frame


def accuracy(model, x, y) -> float:
    """Accuracy in inference mode (dropout off)."""
    return float((np.asarray(model(x, training=False)).argmax(axis=1) == y).mean())


def data_loss(model, x, y) -> float:
    """Mean cross-entropy of ``model`` on ``(x, y)`` in inference mode, without the norm
    penalties that Keras adds to the training loss."""
    return float(keras.ops.mean(keras.losses.sparse_categorical_crossentropy(
        y, model.predict(x, verbose=0))))


def colours(values) -> dict:
    """One colour per variant, the same in every panel of a lab's figure: Matplotlib's cycle
    (``C0``, ``C1``, …) in the order the variants first appear."""
    return {value: f"C{i % 10}" for i, value in enumerate(dict.fromkeys(values))}


def shown_value(value) -> str:
    """A variant as a legend shows it: ``0.5``, ``0``, ``adam``."""
    return f"{value:g}" if isinstance(value, float) else str(value)


def curves(ax, frame: pd.DataFrame, group: str, y: str, *, title: str = "", log: bool = False):
    """One line per value of ``group``: ``y`` against ``epoch`` (or ``step``), each variant in
    its :func:`colours` colour."""
    x = "epoch" if "epoch" in frame else "step"
    colour = colours(frame[group])
    for key, part in frame.groupby(group, sort=False):
        named = shown_value(key) if isinstance(key, str) else f"{group} {shown_value(key)}"
        ax.plot(part[x], part[y], label=named, color=colour[key])
    ax.set(xlabel=x, ylabel=y, title=title or y, yscale="log" if log else "linear")
    integer_epochs(ax)
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
