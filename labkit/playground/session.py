"""One Playground session: the page's settings, checked; the data they generate; the
``playground`` recipe's model; training one epoch at a time in compiled steps; the heatmaps the
page draws; and the labkit config / Python that reproduce the session.

In exact mode (the default) a session is the Playground's own network and update rule (see
``recipes.playground``) trained as its ``oneStep`` does: every epoch visits the training points
in the same order and updates after every ``batch_size`` points; points left over at the end of
an epoch are averaged into the next epoch's first update, as ``nn.ts`` accumulates them.
Otherwise it is Keras's way: a 2-class softmax (or a linear unit for regression) with the task's
loss, the training points reshuffled every epoch, a smaller last batch.

Nothing here touches files: exports are strings the page offers as downloads.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from labkit import optim, plots, seeding
from labkit._lazy import lazy_import
from labkit._startup import quiet_python_logging
from labkit.data import playground_sets
from labkit.errors import LabkitError

np = lazy_import("numpy")

DATASETS = (*playground_sets.GENERATORS, *playground_sets.REGRESSION)
FEATURES = ("x1", "x2", "x1^2", "x2^2", "x1*x2", "sin(x1)", "sin(x2)")
ACTIVATIONS = ("tanh", "relu", "sigmoid", "linear")
REGULARIZATIONS = ("none", "l1", "l2")
OPTIMIZERS = tuple(optim.OPTIMIZERS)
SCHEDULES = ("constant", "exponential", "inverse-time", "step")
INITIALIZERS = ("playground", "glorot_uniform", "he_normal", "random_normal")
# The Playground's menus; the server accepts any value in the same range.
LEARNING_RATES = (0.00001, 0.0001, 0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1, 3, 10)
REGULARIZATION_RATES = (0, 0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1, 3, 10)
GRID, DOMAIN = plots.GRID_SIZE, plots.GRID_LIMIT  # the output heatmap: 100 × 100 on [−6, 6]²
NEURON_GRID = 20  # each neuron's small heatmap
# The lecture topic, and its lab, behind each control (labkit lab run NAME).
LABS = {"learning_rate": "learning-rate", "optimizer": "adaptive-optimizers",
        "momentum": "momentum", "schedule": "lr-schedule", "regularization": "weight-decay",
        "dropout": "dropout", "early_stopping": "early-stopping", "initializer": "initialization",
        "activation": "vanishing-gradients", "batch_size": "gd-vs-sgd",
        "features": "playground", "hidden": "playground"}


@dataclass(frozen=True)
class Settings:
    """What the page sets: the Playground's controls, then the lecture's additions."""

    dataset: str = "circle"
    noise: int = 0  # percent, 0–50
    ratio: int = 50  # percent of points for training, 10–90
    batch_size: int = 10  # 1–30
    features: tuple[str, ...] = ("x1", "x2")
    hidden: tuple[int, ...] = (4, 2)  # up to 6 layers of up to 8
    activation: str = "tanh"
    learning_rate: float = 0.03
    regularization: str = "none"
    regularization_rate: float = 0.0
    exact: bool = True  # the Playground's network and update rule
    optimizer: str = "sgd"
    momentum: float = 0.9  # momentum / nesterov's α
    schedule: str = "constant"
    schedule_every: int = 10  # exponential / step: epochs per decay
    schedule_factor: float = 0.5  # exponential / step: the decay factor
    dropout: float = 0.0  # after each hidden layer, 0–0.9
    initializer: str = "playground"  # U(−0.5, 0.5) weights, biases 0.1
    early_stopping: int = 0  # patience in epochs; 0: off (on: 20 % of training held out)
    seed: int = 0  # the data and the start weights

    @property
    def task(self) -> str:
        if self.dataset in playground_sets.REGRESSION:
            return "regression"
        return "binary" if self.exact else "classification"

    @property
    def validation_split(self) -> float:
        return 0.2 if self.early_stopping else 0.0


def settings(raw: dict[str, Any] | None = None, base: Settings | None = None) -> Settings:
    """``base`` (default: the Playground's defaults) with the page's values ``raw`` checked and
    applied.

    Raises:
        LabkitError: naming the first unknown setting or value out of range.
    """
    base = base or Settings()
    known = [f.name for f in dataclasses.fields(Settings)]
    raw = dict(raw or {})
    if unknown := sorted(set(raw) - set(known)):
        raise LabkitError(f"Unknown setting(s): {', '.join(unknown)}. Known: {', '.join(known)}.")
    values = {**{k: getattr(base, k) for k in known}, **raw}
    _choice(values, "dataset", DATASETS)
    _number(values, "noise", 0, 50, integer=True)
    _number(values, "ratio", 10, 90, integer=True)
    _number(values, "batch_size", 1, 30, integer=True)
    features = values["features"]
    if (not isinstance(features, (list, tuple)) or not features
            or any(f not in FEATURES for f in features) or len(set(features)) != len(features)):
        raise LabkitError(f"features must be distinct names from {', '.join(FEATURES)}, at "
                          f"least one. Received: {features!r}")
    values["features"] = tuple(f for f in FEATURES if f in features)  # the Playground's order
    hidden = values["hidden"]
    if (not isinstance(hidden, (list, tuple)) or len(hidden) > 6
            or any(isinstance(h, bool) or not isinstance(h, int) or not 1 <= h <= 8
                   for h in hidden)):
        raise LabkitError(f"hidden must list up to 6 layers of 1 to 8 neurons. "
                          f"Received: {hidden!r}")
    values["hidden"] = tuple(hidden)
    _choice(values, "activation", ACTIVATIONS)
    _number(values, "learning_rate", 1e-6, 10, open_low=False)
    _choice(values, "regularization", REGULARIZATIONS)
    _number(values, "regularization_rate", 0, 10)
    _flag(values, "exact")
    _choice(values, "optimizer", OPTIMIZERS)
    _number(values, "momentum", 0, 0.999)
    _choice(values, "schedule", SCHEDULES)
    _number(values, "schedule_every", 1, 1000, integer=True)
    _number(values, "schedule_factor", 0.01, 1)
    _number(values, "dropout", 0, 0.9)
    _choice(values, "initializer", INITIALIZERS)
    _number(values, "early_stopping", 0, 1000, integer=True)
    _number(values, "seed", 0, 2**31 - 1, integer=True)
    for key in ("learning_rate", "regularization_rate", "momentum", "schedule_factor",
                "dropout"):
        values[key] = float(values[key])
    return Settings(**values)


def _choice(values: dict, key: str, allowed: tuple) -> None:
    if values[key] not in allowed:
        raise LabkitError(f"{key} must be one of {', '.join(map(str, allowed))}. "
                          f"Received: {values[key]!r}")


def _flag(values: dict, key: str) -> None:
    if not isinstance(values[key], bool):
        raise LabkitError(f"{key} must be true or false. Received: {values[key]!r}")


def _number(values: dict, key: str, low: float, high: float, *, integer: bool = False,
            open_low: bool = False) -> None:
    value = values[key]
    kind = int if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kind) or not math.isfinite(value) \
            or not low <= value <= high:
        raise LabkitError(f"{key} must be {'an integer' if integer else 'a number'} in "
                          f"[{low:g}, {high:g}]. Received: {value!r}")


class Session:
    """A model and its data for one page; :meth:`train_epoch` advances it by one epoch.

    Build it (and call every method) from one thread: the server's trainer thread owns it.
    """

    def __init__(self, chosen: Settings) -> None:
        from labkit import registry

        self.settings = chosen
        x, y = playground_sets.generate(chosen.dataset, noise=chosen.noise / 100,
                                        seed=chosen.seed)
        cut = playground_sets.train_count(len(x), chosen.ratio)
        self.train, self.test = (x[:cut], y[:cut]), (x[cut:], y[cut:])
        self.val = None
        if chosen.validation_split:  # early stopping watches points held out of training
            from labkit.data.base import split

            self.train, self.val = split(*self.train, chosen.validation_split,
                                         stratify=chosen.task != "regression")
        hparams = recipe_hparams(chosen)
        with seeding.seeded(chosen.seed):  # as `labkit train` builds, whatever the server does
            self.model = registry.build_checked("playground", (2,), 2 if chosen.task
                                                != "regression" else 1, hparams, chosen.task)
        self.loss = (registry.get_recipe("playground").loss(hparams, chosen.task)
                     or _task_loss(chosen.task))
        steps = math.ceil(len(self.train[0]) / chosen.batch_size)
        optimizer = optim.make(chosen.optimizer, chosen.learning_rate,
                               optimizer_params(chosen), optim.resolve_schedule(
                                   schedule(chosen)), steps, self.model)
        self.model.compile(optimizer=optimizer, loss=self.loss)  # no metrics: the page's losses
        optimizer.build(self.model.trainable_variables)
        self.rng = np.random.default_rng(chosen.seed)
        self.epoch = 0
        self.carry = np.zeros(0, dtype=int)  # exact mode: points accumulated into the next update
        self.history: list[dict[str, float]] = []
        self.best = (math.inf, 0, None)  # early stopping: val loss, epoch, weights
        self.stopped = ""  # why training stopped by itself (early stopping, a diverged loss)
        quiet_python_logging()
        self._step = _compiled_steps(self.model, self.loss)
        self._probe = _compiled_probe(self.model)
        self._evaluate = _compiled_losses(self.model, self.loss, {
            name: part for name, part in (("train", self.train), ("test", self.test),
                                          ("val", self.val)) if part is not None})
        self.history.append(self._losses())
        if chosen.early_stopping:  # the start is a candidate too, as for Keras's EarlyStopping
            self.best = (self.history[0]["val_loss"], 0, self.model.get_weights())

    # -- training ---------------------------------------------------------------------------
    def batches(self) -> list[np.ndarray]:
        """The index arrays of this epoch's updates, in order."""
        n, size = len(self.train[0]), self.settings.batch_size
        if not self.settings.exact:
            order = self.rng.permutation(n)
            return [order[i:i + size] for i in range(0, n, size)]
        order = np.concatenate([self.carry, np.arange(n)])
        first = len(self.carry) + size  # the carried points join the epoch's first update
        if len(order) < first:
            self.carry = order
            return []
        ends = range(first, len(order) + 1, size)
        self.carry = order[ends[-1]:]
        return [order[:first]] + [order[end - size:end] for end in ends[1:]]

    def train_epoch(self) -> dict[str, float]:
        """One epoch of updates; returns (and records) the losses after it."""
        if self.stopped:
            return self.history[-1]
        x, y = self.train
        size = self.settings.batch_size
        run: list[np.ndarray] = []  # consecutive full batches go in one compiled call
        for group in self.batches():
            if len(group) == size:
                run.append(group)
                continue
            if run:
                self._step(x[np.stack(run)], y[np.stack(run)])
                run = []
            self._step(x[group][None], y[group][None])
        if run:
            self._step(x[np.stack(run)], y[np.stack(run)])
        self.epoch += 1
        losses = self._losses()
        self.history.append(losses)
        self._watch(losses)
        return losses

    def _losses(self) -> dict[str, float]:
        """The loss on each split, as the Playground's getLoss (no regularization term)."""
        values = self._evaluate()
        return {"epoch": self.epoch, **{f"{k}_loss": float(v) for k, v in values.items()}}

    def _watch(self, losses: dict[str, float]) -> None:
        if not all(math.isfinite(v) for v in losses.values()):
            self.stopped = f"the loss became non-finite in epoch {self.epoch}: lower the rate"
            return
        patience = self.settings.early_stopping
        if not patience:
            return
        if losses["val_loss"] < self.best[0]:
            self.best = (losses["val_loss"], self.epoch, self.model.get_weights())
        elif self.epoch - self.best[1] >= patience:
            self.model.set_weights(self.best[2])
            self.stopped = (f"early stopping: no better validation loss for {patience} epochs; "
                            f"weights of epoch {self.best[1]} restored")

    # -- what the page draws ----------------------------------------------------------------
    def heatmaps(self) -> dict[str, Any]:
        """The output over the GRID × GRID grid on [−6, 6]² (row 0 at x2 = +6, as drawn), in
        the Playground's −1 (orange) … +1 (blue) units for classification, and each hidden
        neuron's output on a NEURON_GRID grid, each as :func:`packed` bytes."""
        outputs = [np.asarray(o) for o in self._probe(_grid(GRID))]
        output = plots.playground_output(outputs[-1], self.settings.task).reshape(GRID, GRID)
        step = GRID // NEURON_GRID
        neurons = [[packed(layer[:, k].reshape(GRID, GRID)[::step, ::step])
                    for k in range(layer.shape[1])] for layer in outputs[:-1]]
        return {"output": packed(output), "neurons": neurons}

    def points(self) -> dict[str, list]:
        """Training, test (and held-out validation) points with their labels (±1 or values)."""
        def rows(part):
            if part is None:
                return []
            x, y = part
            label = y[:, 0] if y.ndim == 2 else 2 * y - 1.0
            return np.round(np.column_stack([x, label]), 4).tolist()

        return {"train": rows(self.train), "test": rows(self.test), "val": rows(self.val)}


def packed(values: np.ndarray) -> str:
    """A square grid of values clipped to [−1, 1] as base64 of signed bytes (value × 127), row
    by row: 10 000 values in 13 KB of JSON, so the page can redraw many times a second."""
    import base64

    quantized = np.round(np.clip(np.nan_to_num(values), -1, 1) * 127).astype("int8")
    return base64.b64encode(quantized.tobytes()).decode("ascii")


def unpacked(text: str) -> np.ndarray:
    """:func:`packed`'s grid back, as floats (to within 1/254)."""
    import base64

    values = np.frombuffer(base64.b64decode(text), dtype="int8") / 127.0
    side = int(round(len(values) ** 0.5))
    return values.reshape(side, side)


def _task_loss(task: str):
    """Keras's loss for ``task`` outside exact mode, as :mod:`labkit.tasks` names it."""
    import keras

    return {"classification": keras.losses.SparseCategoricalCrossentropy,
            "regression": keras.losses.MeanSquaredError}[task]()


def recipe_hparams(chosen: Settings) -> dict[str, Any]:
    """The ``playground`` recipe's hyperparameters for these settings."""
    hparams: dict[str, Any] = {"features": list(chosen.features), "hidden": list(chosen.hidden),
                               "activation": chosen.activation,
                               "regularization": chosen.regularization,
                               "regularization_rate": chosen.regularization_rate,
                               "exact": chosen.exact}
    if chosen.dropout:
        hparams["dropout"] = chosen.dropout
    if chosen.initializer != "playground":
        hparams.update(kernel_initializer=chosen.initializer, bias_initializer="zeros")
    elif not chosen.exact:  # exact mode starts there anyway
        hparams.update(kernel_initializer="random_uniform(minval=-0.5, maxval=0.5)",
                       bias_initializer="constant(0.1)")
    return hparams


def optimizer_params(chosen: Settings) -> dict[str, float]:
    return {"momentum": chosen.momentum} if chosen.optimizer in ("momentum", "nesterov") else {}


def schedule(chosen: Settings) -> dict[str, Any]:
    """The learning-rate schedule as ``labkit.optim`` names it."""
    if chosen.schedule == "exponential":
        return {"name": "exponential", "rate": chosen.schedule_factor,
                "every": chosen.schedule_every}
    if chosen.schedule == "step":
        return {"name": "step", "every": chosen.schedule_every, "factor": chosen.schedule_factor}
    if chosen.schedule == "inverse-time":
        return {"name": "inverse-time", "tau": float(chosen.schedule_every)}
    return {"name": "constant"}


def config(chosen: Settings, epochs: int) -> dict[str, Any]:
    """The ``labkit train --config`` mapping that trains this session's model on its data for
    ``epochs`` epochs (at least 1)."""
    out: dict[str, Any] = {
        "recipe": "playground", "hparams": recipe_hparams(chosen), "dataset": chosen.dataset,
        "task": chosen.task,
        "data_options": {"noise": chosen.noise / 100, "ratio": chosen.ratio,
                         "seed": chosen.seed},
        "epochs": max(1, epochs), "batch_size": chosen.batch_size,
        "optimizer": chosen.optimizer, "learning_rate": chosen.learning_rate,
        "validation_split": chosen.validation_split, "seed": chosen.seed,
    }
    out.update(optimizer_params(chosen))
    if chosen.schedule != "constant":
        out["schedule"] = schedule(chosen)
    if chosen.early_stopping:
        out["early_stopping"] = {"patience": chosen.early_stopping, "restore_best": True}
    if chosen.exact:
        out["shuffle"] = False
    return out


def config_yaml(chosen: Settings, epochs: int) -> str:
    import yaml

    return ("# labkit train --config playground.yaml\n"
            + yaml.safe_dump(config(chosen, epochs), sort_keys=False))


def python_code(chosen: Settings, epochs: int) -> str:
    """A few lines of Python that train the same model with ``labkit.train``."""
    import pprint

    options = config(chosen, epochs)
    recipe = options.pop("recipe")
    indent = " " * len("run = labkit.train(")
    lines = ["import labkit", "", f"run = labkit.train({recipe!r},"]
    for key, value in options.items():
        text = pprint.pformat(value, width=96 - len(indent) - len(key), sort_dicts=False,
                              compact=True)
        text = text.replace("\n", "\n" + " " * (len(indent) + len(key) + 1))
        lines.append(f"{indent}{key}={text},")
    lines[-1] = lines[-1].rstrip(",") + ")"
    lines += ["print(run.path, run.metrics)"]
    return "\n".join(lines) + "\n"


def _grid(n: int) -> np.ndarray:
    """n × n points on [−6, 6]², row-major from the top row (x2 = +6) as the page draws them."""
    axis = np.linspace(-DOMAIN, DOMAIN, n, dtype="float32")
    x1, x2 = np.meshgrid(axis, axis[::-1])
    return np.stack([x1.ravel(), x2.ravel()], axis=1)


def _compiled_steps(model, loss):
    """``step(x, y)``: one update per leading index of ``x`` (batches × points × 2), in one
    compiled call under TensorFlow; one call per batch on other backends."""
    import keras

    def update(xb, yb):
        import tensorflow as tf

        with tf.GradientTape() as tape:
            value = loss(yb, model(xb, training=True))
            if model.losses:
                value = value + tf.add_n(model.losses)
        grads = tape.gradient(value, model.trainable_variables)
        model.optimizer.apply(grads, model.trainable_variables)

    if keras.backend.backend() != "tensorflow":
        def step(x, y):
            for xb, yb in zip(x, y, strict=True):
                model.train_on_batch(xb, yb)
        return step
    import tensorflow as tf

    @tf.function(reduce_retracing=True)
    def run(x, y):
        for i in tf.range(tf.shape(x)[0]):
            update(x[i], y[i])

    return lambda x, y: run(tf.constant(x), tf.constant(y))


def _compiled_losses(model, loss, parts: dict):
    """``evaluate()``: the loss on each of ``parts`` (name → (x, y)) in one compiled call."""
    import keras

    if keras.backend.backend() != "tensorflow":
        return lambda: {name: loss(y, model.predict_on_batch(x)) for name, (x, y) in
                        parts.items()}
    import tensorflow as tf

    tensors = {name: (tf.constant(x), tf.constant(y)) for name, (x, y) in parts.items()}
    compiled = tf.function(lambda: {name: loss(y, model(x, training=False))
                                    for name, (x, y) in tensors.items()})
    return lambda: {name: value.numpy() for name, value in compiled().items()}


def _compiled_probe(model):
    """``probe(points)``: every hidden layer's activations and the predictions, compiled."""
    import keras

    probe = keras.Model(model.inputs, [*_hidden_outputs(model), model.outputs[0]])
    if keras.backend.backend() != "tensorflow":
        return probe.predict_on_batch
    import tensorflow as tf

    return tf.function(lambda points: probe(points, training=False))


def _hidden_outputs(model) -> list:
    """The output tensor of each hidden layer after its activation: ``fcN`` in exact mode (the
    activation is inside the Dense), ``fcN_<activation>`` otherwise."""
    outputs = []
    for i in range(1, 7):
        names = [f"fc{i}_{a}" for a in ACTIVATIONS]
        found = [layer for layer in model.layers if layer.name in names]
        if not found:
            found = [layer for layer in model.layers if layer.name == f"fc{i}"]
        if not found:
            break
        outputs.append(found[0].output)
    return outputs
