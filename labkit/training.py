"""``labkit train``: config → data → recipe → compile → fit → run directory."""

from __future__ import annotations

import datetime as dt
import math
import platform
import sys
from collections.abc import Callable
from pathlib import Path

import keras
import numpy as np

from labkit import __version__, augment, checkpoint, data, optim, phases, plots, registry, runs
from labkit.callbacks import EarlyStopping, ReduceLROnPlateau, RunRecorder
from labkit.config import TrainConfig
from labkit.errors import LabkitError

Echo = Callable[[str], None]


def versions() -> dict[str, str]:
    found = {"labkit": __version__, "keras": keras.__version__, "backend": keras.backend.backend(),
             "python": platform.python_version()}
    if "tensorflow" in sys.modules or keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        found["tensorflow"] = tf.__version__
    return found


def build_model(config: TrainConfig, spec: data.DatasetSpec):
    """The recipe's model for ``spec``; a hyperparameter the recipe rejects is a LabkitError."""
    try:
        return registry.build(config.recipe, input_shape=spec.input_shape,
                              num_classes=spec.num_classes, **config.hparams)
    except (ValueError, TypeError) as err:
        raise LabkitError(str(err)) from None


def compile_model(model, config: TrainConfig, learning_rate: float | None = None,
                  steps_per_epoch: int = 1) -> None:
    """Compile with the config's optimizer, hyperparameters, clipping and schedule."""
    optimizer = optim.make(config.optimizer, learning_rate or config.learning_rate,
                           config.optimizer_params, config.schedule, steps_per_epoch)
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])


def split_inputs(split, spec: data.DatasetSpec, batch_size: int, *, shuffle: bool = False,
                 seed: int | None = None):
    """``(x, y)`` scaled for a numpy split, or a batched pipeline for a streamed one."""
    if split is None:
        return None
    if isinstance(split, tuple):
        x, y = split
        return data.model_input(x, spec), y
    return data.stream(split, spec, batch_size, shuffle=shuffle, seed=seed)


def fit_kwargs(loaded: data.Data, config: TrainConfig, derived: dict, features=None) -> dict:
    """``model.fit`` arguments: the training data as a ``tf.data`` pipeline reshuffled every
    epoch (augmented when asked), validation data as is, class weights.

    In-memory data goes through ``tf.data`` too: Keras's own ``shuffle=True`` on arrays repeats
    the same order every epoch once a global seed is set (measured with Keras 3.15), which would
    make every epoch's minibatches the same. ``features`` (a frozen base's ``predict``) maps the
    inputs first when a phase trains only a head.
    """
    import tensorflow as tf

    batch_size = derived["batch_size"]
    train = split_inputs(loaded.train, loaded.spec, batch_size, shuffle=True, seed=config.seed)
    val = split_inputs(loaded.val, loaded.spec, derived["eval_batch_size"])
    if features is not None:
        train = (features(train[0]), train[1])
        val = (features(val[0]), val[1]) if val is not None else None
    if isinstance(train, tuple):
        train = tf.data.Dataset.from_tensor_slices(train).shuffle(
            len(train[1]), seed=config.seed, reshuffle_each_iteration=True).batch(batch_size)
    if config.augment:
        train = augment.apply(train, config.augment, config.seed)
    kwargs = {"x": train.prefetch(tf.data.AUTOTUNE), "shuffle": False,  # the pipeline shuffles
              "validation_data": val}
    if derived["class_weight"]:
        kwargs["class_weight"] = derived["class_weight"]
    return kwargs


def evaluate_split(model, split, spec: data.DatasetSpec, batch_size: int, prefix: str) -> dict:
    """``model.evaluate`` on a split, keys prefixed (``test_loss``, ``test_accuracy``)."""
    inputs = split_inputs(split, spec, batch_size)
    args = inputs if isinstance(inputs, tuple) else (inputs,)
    results = model.evaluate(*args, batch_size=batch_size, verbose=0, return_dict=True)
    return {f"{prefix}_{k}": float(v) for k, v in results.items()}


def train(config: TrainConfig, echo: Echo = print) -> runs.Run:
    """Train ``config`` and write its run directory; returns the run.

    Every option is validated, the data loaded and the model built before the run directory is
    created, so a mistake costs nothing and leaves nothing behind. A run whose loss turns
    non-finite stops and is returned with status ``diverged`` (see :func:`divergence_message`).

    Raises:
        Interrupted: on Ctrl-C, after saving what finished; ``resume(err.run.path)`` continues.
    """
    return _train(config.validate().resolved(), echo)


def resume(path: str | Path, echo: Echo = print) -> runs.Run:
    """Continue the interrupted run at ``path`` from its last finished epoch.

    The model, the optimizer's state (moments, step count, so the schedule's position), early
    stopping's and reduce-on-plateau's counters and the best metric come from ``last.keras``;
    history.csv keeps the epochs up to it and continues after them.
    """
    run = runs.open_run(path)
    status = run.metrics.get("status", "running")
    if status == "completed":
        raise LabkitError(f"{run.path} has completed all its epochs; there is nothing to resume.")
    if status == "diverged":
        raise LabkitError(f"{run.path} diverged (non-finite loss); resuming would diverge again. "
                          "Start a new run with a lower --learning-rate or with --clipnorm.")
    config = TrainConfig.from_dict(run.config).validate().resolved()
    last = run.file(checkpoint.LAST)
    saved = checkpoint.read(last) if last.exists() else None
    return _train(config, echo, run=run, saved=saved)


class Interrupted(Exception):
    """Training stopped by Ctrl-C; the finished epochs are saved in ``run``."""

    def __init__(self, run: runs.Run) -> None:
        super().__init__("interrupted")
        self.run = run


def _train(config: TrainConfig, echo: Echo, run: runs.Run | None = None,
           saved: checkpoint.Checkpoint | None = None) -> runs.Run:
    loaded = data.load(config.dataset, validation_split=config.validation_split,
                       data_dir=config.data_dir, options=config.data_options)
    derived = derive(config, loaded)
    if config.deterministic:
        enable_determinism()
    done = saved.state["epoch"] if saved else 0
    keras.utils.set_random_seed(config.seed + done)
    if saved:
        from labkit.evaluation import load_model

        model = load_model(run, checkpoint.LAST, compile=False)
    else:
        model = build_model(config, loaded.spec)

    rows: list[dict] = []
    if run is None:
        run = runs.create_run(config.runs_dir, config.run_name())
        record = {**config.to_dict(), "run": run.path.name,
                  "created": dt.datetime.now().isoformat(timespec="seconds"),
                  "versions": versions(), "derived": derived}
        runs.write_json(run.file(runs.CONFIG), record)
        echo(f"Run directory: {run.path}")
    else:
        rows = previous_rows(run, done)
        echo(f"Resuming {run.path} after epoch {done}")
    for note in loaded.notes:
        echo(note)

    plan = (registry.get_recipe(config.recipe).phases or phases.single)(config.hparams,
                                                                        config.epochs)
    recorder = RunRecorder(run, model, config.monitor, rows=rows, with_phase=len(plan) > 1,
                           state=saved.state if saved else None)
    try:
        fit_phases(model, plan, loaded, config, derived, recorder, saved)
    except KeyboardInterrupt:
        recorder.finish("interrupted")
        raise Interrupted(run) from None
    if recorder.diverged:
        recorder.finish("diverged", {"hint": divergence_message(config, recorder.diverged)})
        return run
    if getattr(model, "optimizer", None) is None or not model.optimizer.built:  # fit in parts
        compile_model(model, config)
        model.optimizer.build(model.trainable_variables)
    with runs.atomic_path(run.file(runs.MODEL)) as tmp:
        model.save(tmp)
    if loaded.spec.input_shape == (2,):
        plots.decision_boundary(model, loaded, run.file(plots.BOUNDARY))
    test = evaluate_split(model, loaded.test, loaded.spec, derived["eval_batch_size"], "test") \
        if loaded.test is not None else {}
    recorder.finish("completed", test)
    return run


def derive(config: TrainConfig, loaded: data.Data) -> dict:
    """What the config implies for this data: batch size in examples, steps per epoch, class
    weights (``balanced``: n / (k · count of the class), scikit-learn's formula)."""
    n = len(loaded.train[1]) if not loaded.streaming else _count(loaded.train)
    batch_size = n if config.batch_size == "full" else config.batch_size
    weights = config.class_weight
    if weights == "balanced":
        from sklearn.utils.class_weight import compute_class_weight

        labels = loaded.train[1] if not loaded.streaming else np.fromiter(
            loaded.train.map(lambda x, y: y).as_numpy_iterator(), dtype="int64")
        present = np.unique(labels)
        values = compute_class_weight("balanced", classes=present, y=labels)
        weights = {int(c): float(w) for c, w in zip(present, values, strict=True)}
    if weights:  # every class needs a weight (Keras indexes a table by label); unnamed ones 1
        weights = {c: float(weights.get(c, 1.0)) for c in range(loaded.spec.num_classes)}
    return {"train_examples": n, "batch_size": batch_size,
            "steps_per_epoch": math.ceil(n / batch_size),
            "eval_batch_size": min(batch_size, 1024), "class_weight": weights}


def _count(ds) -> int:
    """Examples in an unbatched ``tf.data`` split: its cardinality, counted only if unknown."""
    n = int(ds.cardinality())
    return n if n >= 0 else int(ds.reduce(0, lambda count, _: count + 1))


def previous_rows(run: runs.Run, epochs: int) -> list[dict]:
    """history.csv's rows up to ``epochs`` (later ones were written after the last checkpoint)."""
    import pandas as pd

    path = run.file(runs.HISTORY)
    if not epochs or not path.exists():
        return []
    history = pd.read_csv(path)
    return history[history["epoch"] <= epochs].to_dict("records")


def enable_determinism() -> None:
    """Deterministic kernels (TensorFlow op determinism); seeds are set separately."""
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()


def divergence_message(config: TrainConfig, diverged: dict) -> str:
    """Why a run stopped on a non-finite loss, and what to try."""
    hints = [f"lower --learning-rate (it was {diverged['lr']:.3g})"]
    if config.clipnorm is None and config.clipvalue is None:
        hints.append("clip gradients with --clipnorm 1.0")
    hints.append("start from smaller weights, e.g. --set kernel_initializer=glorot_uniform, "
                 "if the recipe takes it")
    return (f"The loss became {diverged['loss']} in epoch {diverged['epoch']}: the updates grew "
            f"without bound (exploding gradients). Try: {'; '.join(hints)}.")


def fit_phases(model, plan: list[phases.Phase], loaded: data.Data, config: TrainConfig,
               derived: dict, recorder: RunRecorder,
               saved: checkpoint.Checkpoint | None = None) -> None:
    """Fit ``model`` phase after phase; epochs are numbered across phases. With ``saved``,
    finished phases are skipped and the interrupted one continues where it stopped."""
    state = saved.state if saved else {"phase": 0, "phase_epochs": 0, "phase_done": False}
    for index, phase in enumerate(plan):
        if index < state["phase"] or (index == state["phase"] and state["phase_done"]):
            continue
        resuming = saved is not None and index == state["phase"]
        if phase.seed is not None:
            keras.utils.set_random_seed(phase.seed + (state["phase_epochs"] if resuming else 0))
        target = phase.prepare(model)
        if phase.split is not None and not loaded.streaming and not config.augment:
            target, kwargs = _on_features(phase, model, loaded, config, derived)
        else:
            kwargs = fit_kwargs(loaded, config, derived)
        compile_model(target, config, phase.learning_rate, derived["steps_per_epoch"])
        if resuming and saved.optimizer:
            checkpoint.restore_optimizer(target.optimizer, target.trainable_variables,
                                         saved.optimizer)
        controls = training_controls(config, saved if resuming else None,
                                     recorder.run.file(runs.TENSORBOARD))
        already = state["phase_epochs"] if resuming else 0
        recorder.start_phase(index, phase.name, phase.epochs, already, controls)
        start = len(recorder.rows)
        target.fit(initial_epoch=start, epochs=start + phase.epochs - already,
                   callbacks=[*controls, recorder], verbose=progress_mode(), **kwargs)
        if recorder.diverged:
            return
        recorder.end_phase()


def training_controls(config: TrainConfig, saved: checkpoint.Checkpoint | None = None,
                      log_dir: Path | None = None) -> list:
    """The callbacks the config asks for, restored from ``saved``: early stopping,
    reduce-on-plateau, TensorBoard."""
    restored = saved.state.get("controls", {}) if saved else {}
    controls: list = []
    if config.early_stopping:
        es = config.early_stopping
        restore = restored.get("EarlyStopping")
        if restore is not None and saved.best_weights is not None:
            restore = {**restore, "best_weights": saved.best_weights}
        controls.append(EarlyStopping(monitor=config.monitor, patience=es["patience"],
                                      min_delta=es["min_delta"],
                                      restore_best_weights=es["restore_best"], restore=restore))
    if config.schedule["name"] == "plateau":
        s = config.schedule
        controls.append(ReduceLROnPlateau(monitor=config.monitor, factor=s["factor"],
                                          patience=s["patience"], min_delta=s["min_delta"],
                                          cooldown=s["cooldown"], min_lr=s["min_lr"],
                                          restore=restored.get("ReduceLROnPlateau")))
    if config.tensorboard and log_dir is not None:
        controls.append(keras.callbacks.TensorBoard(log_dir=str(log_dir)))
    return controls


def _on_features(phase: phases.Phase, model, loaded: data.Data, config: TrainConfig,
                 derived: dict):
    """Compute a frozen base's features once; return the head and fit arguments on features."""
    base, head = phase.split(model)

    def features(x):
        return base.predict(x, batch_size=derived["eval_batch_size"], verbose=0)

    return head, fit_kwargs(loaded, config, derived, features)


def progress_mode() -> int:
    """Keras's progress bar on a terminal; one line per epoch in logs and CI."""
    return 1 if sys.stdout.isatty() else 2
