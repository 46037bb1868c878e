"""``labkit train``: config → data → recipe → compile → fit → run directory."""

from __future__ import annotations

import datetime as dt
import platform
import sys
from collections.abc import Callable

import keras

from labkit import __version__, data, optim, phases, plots, registry, runs
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


def compile_model(model, config: TrainConfig, learning_rate: float | None = None) -> None:
    model.compile(optimizer=optim.make(config.optimizer, learning_rate or config.learning_rate),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])


def split_inputs(split, spec: data.DatasetSpec, batch_size: int, *, shuffle: bool = False,
                 seed: int | None = None):
    """``(x, y)`` scaled for a numpy split, or a batched pipeline for a streamed one."""
    if split is None:
        return None
    if isinstance(split, tuple):
        x, y = split
        return data.model_input(x, spec), y
    return data.stream(split, spec, batch_size, shuffle=shuffle, seed=seed)


def fit_kwargs(loaded: data.Data, config: TrainConfig) -> dict:
    train = split_inputs(loaded.train, loaded.spec, config.batch_size, shuffle=True,
                         seed=config.seed)
    kwargs = {"validation_data": split_inputs(loaded.val, loaded.spec, config.batch_size)}
    if isinstance(train, tuple):
        kwargs.update(x=train[0], y=train[1], batch_size=config.batch_size, shuffle=True)
    else:
        kwargs["x"] = train
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
    created, so a mistake costs nothing and leaves nothing behind.
    """
    config = config.validate().resolved()
    loaded = data.load(config.dataset, validation_split=config.validation_split,
                       data_dir=config.data_dir, options=config.data_options)
    keras.utils.set_random_seed(config.seed)
    model = build_model(config, loaded.spec)

    run = runs.create_run(config.runs_dir, config.run_name())
    record = {**config.to_dict(), "run": run.path.name,
              "created": dt.datetime.now().isoformat(timespec="seconds"),
              "versions": versions()}
    runs.write_json(run.file(runs.CONFIG), record)
    echo(f"Run directory: {run.path}")
    for note in loaded.notes:
        echo(note)

    plan = (registry.get_recipe(config.recipe).phases or phases.single)(config.hparams,
                                                                        config.epochs)
    recorder = RunRecorder(run, with_phase=len(plan) > 1)
    try:
        fit_phases(model, plan, loaded, config, recorder)
    except KeyboardInterrupt:
        recorder.finish("interrupted")
        raise
    compile_model(model, config)  # a multi-phase plan may have compiled only parts of it
    with runs.atomic_path(run.file(runs.MODEL)) as tmp:
        model.save(tmp)
    if loaded.spec.input_shape == (2,):
        plots.decision_boundary(model, loaded, run.file(plots.BOUNDARY))
    test = evaluate_split(model, loaded.test, loaded.spec, config.batch_size, "test") \
        if loaded.test is not None else {}
    recorder.finish("completed", test)
    return run


def fit_phases(model, plan: list[phases.Phase], loaded: data.Data, config: TrainConfig,
               recorder: RunRecorder) -> None:
    """Fit ``model`` phase after phase; epochs are numbered across phases."""
    done = 0
    for phase in plan:
        if phase.seed is not None:
            keras.utils.set_random_seed(phase.seed)
        target = phase.prepare(model)
        recorder.phase = phase.name
        kwargs = fit_kwargs(loaded, config)
        if phase.split is not None and not loaded.streaming:
            target, kwargs = _on_features(phase, model, kwargs, config.batch_size)
        compile_model(target, config, phase.learning_rate)
        target.fit(initial_epoch=done, epochs=done + phase.epochs, callbacks=[recorder],
                   verbose=progress_mode(), **kwargs)
        done += phase.epochs


def _on_features(phase: phases.Phase, model, kwargs: dict, batch_size: int):
    """Compute a frozen base's features once; return the head and fit arguments on features."""
    base, head = phase.split(model)

    def features(x):
        return base.predict(x, batch_size=batch_size, verbose=0)

    kwargs = dict(kwargs, x=features(kwargs["x"]))
    if kwargs.get("validation_data") is not None:
        x_val, y_val = kwargs["validation_data"]
        kwargs["validation_data"] = (features(x_val), y_val)
    return head, kwargs


def progress_mode() -> int:
    """Keras's progress bar on a terminal; one line per epoch in logs and CI."""
    return 1 if sys.stdout.isatty() else 2


def summarize(rows: list[dict], status: str, extra: dict | None = None) -> dict:
    """metrics.json's content from the history rows so far."""
    metrics: dict = {"status": status, "epochs_completed": len(rows)}
    if rows:
        metrics.update({f"final_{k}": v for k, v in rows[-1].items()
                        if k not in ("epoch", "phase")})
        if "val_accuracy" in rows[-1]:
            best = max(rows, key=lambda r: r["val_accuracy"])
            metrics.update(best_epoch=best["epoch"], best_val_accuracy=best["val_accuracy"],
                           best_val_loss=best.get("val_loss"))
    metrics.update(extra or {})
    return metrics


class RunRecorder(keras.callbacks.Callback):
    """Writes history.csv (a row per finished epoch), metrics.json and curves.png as epochs end."""

    def __init__(self, run: runs.Run, with_phase: bool = False) -> None:
        super().__init__()
        self.run = run
        self.rows: list[dict] = []
        self.with_phase = with_phase
        self.phase = ""

    def on_epoch_end(self, epoch, logs=None):
        row = {"epoch": epoch + 1, **({"phase": self.phase} if self.with_phase else {})}
        self.rows.append({**row, **{k: float(v) for k, v in (logs or {}).items()}})
        self._write("running")

    def _write(self, status: str, extra: dict | None = None) -> None:
        import pandas as pd

        history = pd.DataFrame(self.rows)
        runs.write_text(self.run.file(runs.HISTORY), history.to_csv(index=False))
        runs.write_json(self.run.file(runs.METRICS), summarize(self.rows, status, extra))
        return history

    def finish(self, status: str, extra: dict | None = None) -> None:
        history = self._write(status, extra)
        if self.rows:
            plots.curves(history, self.run.file(runs.CURVES))
