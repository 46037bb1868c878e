"""``labkit train``: prepare → open the run → fit → finish.

- :func:`prepare`: the data, what the config implies for it (batch size, steps, class weights),
  the model and the phase plan, before anything is written;
- :func:`open_run`: the run directory with config.json (or an existing one, to resume);
- :func:`fit_phases`: compile and fit phase after phase, the recorder keeping the run current;
- :func:`finish`: model.keras, the decision-boundary plot, test metrics, the final metrics.json.

:func:`train` and :func:`resume` chain them.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import math
import platform
import shutil
import sys
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np

from labkit import (
    checkpoint,
    data,
    devices,
    files,
    interrupts,
    layout,
    optim,
    phases,
    plots,
    processes,
    ranges,
    registry,
    runs,
    seeding,
    tasks,
)
from labkit.callback_list import EpochCallbacks, steps_of
from labkit.callbacks import RunRecorder, training_controls
from labkit.config import TrainConfig
from labkit.data import pipeline
from labkit.data.batches import ArrayBatches
from labkit.errors import LabkitError
from labkit.version import __version__

Echo = Callable[[str], None]


class StoppedByFault(LabkitError):
    """A disk fault stopped training; ``run`` keeps its finished epochs and can be resumed."""

    def __init__(self, message: str, run: runs.Run) -> None:
        super().__init__(message)
        self.run = run


class Interrupted(Exception):
    """Training stopped by Ctrl-C, SIGTERM or a stop event; the finished epochs are saved in
    ``run``. Its text says what was kept and the call that continues it; a notebook shows
    that text alone, without a traceback (IPython's ``_render_traceback_``)."""

    def __init__(self, run: runs.Run, exit_code: int = 130) -> None:
        super().__init__("interrupted")
        self.run = run
        self.exit_code = exit_code  # 130 after Ctrl-C, 143 after SIGTERM (as a shell counts)

    def __str__(self) -> str:
        return interrupted_message(self.run, python=True)

    def _render_traceback_(self) -> list[str]:
        return str(self).splitlines()


def interrupted_message(run: runs.Run, python: bool = False) -> str:
    """What an interrupted run keeps, read from its checkpoint (what ``--resume`` starts
    from), and the command (``python``: the call) that continues it."""
    kept = checkpoint.saved_epochs(run.file(layout.LAST))
    resume = f"Resume with: labkit.train(resume={str(run.path)!r})" if python else \
        f"Resume with: labkit train --resume {run.path}"
    if kept == 0:
        return (f"Interrupted before the first epoch ended; {run.path} holds no trained epoch "
                f"yet.\n{resume}")
    epochs = "epoch 1" if kept == 1 else f"epochs 1–{kept}"
    return f"Interrupted; {run.path} keeps {epochs} (in last.keras).\n{resume}"


@dataclass
class Prepared:
    """Everything a run needs before its directory exists."""

    config: TrainConfig  # resolved
    loaded: data.Data
    derived: dict  # train_examples, batch_size, steps_per_epoch, eval_batch_size, class_weight
    model: keras.Model
    plan: list[phases.Phase]
    place: devices.Placement | None = None  # where it trains (None: the default device)


def train(config: TrainConfig, echo: Echo = print,
          stop: threading.Event | None = None, group=None) -> runs.Run:
    """Train ``config`` and write its run directory; returns the run.

    Every option is validated, the data loaded and the model built before the run directory is
    created, so a mistake costs nothing and leaves nothing behind. A run whose loss explodes
    stops and is returned with status ``diverged`` (see :func:`divergence_message`). The model
    is built, compiled and fitted inside the precision policy and distribution strategy the
    config asks for (:func:`labkit.devices.placed`).

    ``stop``: an event that, once set (from another thread, or by the handlers of
    :func:`labkit.interrupts.stop_on_signals`), stops training at the next epoch boundary.

    ``group`` (a :class:`labkit.processes.ProcessGroup`, with ``--distribute data-parallel``):
    this process is one of several training the model together. Every process runs the same
    steps (Keras saves with collectives); process 0 writes the run directory, the others a
    private scratch copy that is removed when the process ends, and return that.

    Raises:
        Interrupted: on Ctrl-C or ``stop``, after saving what finished;
            ``resume(err.run.path)`` continues.
    """
    config = config if config.is_resolved else config.resolve()
    with devices.placed(config.precision, config.distribute, config.devices, echo,
                        group=group) as place:
        prepared = prepare(config, place=place)
        for warning in learning_warnings(prepared.model, prepared.loaded.spec.num_classes,
                                         prepared.loaded.spec.task):
            echo(f"warning: {warning}")
        if (cap := phases.epoch_cap()) is not None:
            echo(f"note: {phases.EPOCH_CAP}={cap} cuts every phase to at most that many epochs "
                 f"(set by the docs' tests; unset it for real work).")
        if place.main:
            check_room(config.runs_dir, prepared.model)
            run = open_run(prepared, echo)
            if faster := devices.faster_path(config.precision):
                echo(faster)
        else:
            run = open_run(prepared, echo, runs_dir=processes.scratch_folder(place))
        with runs.lock(run):
            return fit_and_finish(prepared, run, stop=stop)


def resume(path: str | Path, echo: Echo = print,
           stop: threading.Event | None = None, group=None) -> runs.Run:
    """Continue the interrupted run at ``path`` from its last finished epoch.

    The model, the optimizer's state (moments, step count, so the schedule's position), early
    stopping's and reduce-on-plateau's counters and the best metric come from ``last.keras``;
    history.csv keeps the epochs up to it and continues after them. The run's precision policy
    and distribution are used again. ``stop`` and ``group`` as for :func:`train`: with a
    group, every process resumes from process 0's run (the runs folder must be shared, or
    copied to each machine); the others continue in a scratch copy of it.
    """
    run = runs.open_run(path)
    if group is not None and not group.main:
        run = runs.Run(runs.copy_run(run, processes.scratch_folder(group)))
    with runs.lock(run):
        files.remove_leftovers(run.path)  # a write cut short by kill -9
        status = run.metrics.get("status", "running")
        if status == "completed":
            raise LabkitError(f"{run.path} has completed all its epochs; there is nothing to "
                              "resume.")
        if status == "diverged":
            raise LabkitError(f"{run.path} diverged (its loss exploded); resuming would diverge "
                              "again. Start a new run with a lower --learning-rate or with "
                              "--clipnorm.")
        config = TrainConfig.from_dict(run.config).resolve()
        policy = run.config.get("derived", {}).get("dtype_policy", "float32")
        with devices.placed(config.precision, config.distribute, config.devices, echo,
                            policy=policy, group=group) as place:
            # Loading builds the layers first, with their initializers: data-parallel
            # processes must draw the same values (Keras checks) before the saved ones replace
            # them. prepare() seeds again for training.
            with seeding.seeded(config.seed):
                saved, model = readable_checkpoint(run, echo)
            done = saved.state["epoch"] if saved else 0
            prepared = prepare(config, model=model, epochs_done=done, place=place)
            echo(f"Resuming {run.path} after epoch {done}")
            return fit_and_finish(prepared, run, saved, rows=previous_rows(run, done), stop=stop)


def readable_checkpoint(run: runs.Run, echo: Echo = print):
    """``(checkpoint, model)`` to resume ``run`` from: last.keras, or best.keras (an earlier
    epoch, said so) when last.keras is damaged; ``(None, None)`` before the first epoch."""
    last, best = run.file(layout.LAST), run.file(layout.BEST)
    if not last.exists():
        return None, None
    try:
        return checkpoint.read(last), runs.load_model(run, layout.LAST, compile=False)
    except LabkitError as damaged:
        if not best.exists():
            raise LabkitError(f"{damaged} There is no best.keras to fall back on, so the run "
                              f"cannot be resumed; start it again with: labkit train --config "
                              f"{run.file(layout.CONFIG)}") from None
        try:
            saved = checkpoint.read(best)
            model = runs.load_model(run, layout.BEST, compile=False)
        except LabkitError as also:
            raise LabkitError(f"{damaged} best.keras cannot be used either: {also}") from None
        echo(f"{damaged} Resuming from best.keras instead, after epoch {saved.state['epoch']}; "
             "the epochs after it are trained again.")
        return saved, model


def prepare(config: TrainConfig, model: keras.Model | None = None,
            epochs_done: int = 0, place: devices.Placement | None = None) -> Prepared:
    """Load the data, derive batch and class-weight settings, seed, and build the model (or take
    ``model``, a checkpoint's); nothing is written. Call it inside ``place`` (see
    :func:`labkit.devices.placed`), whose policy and replicas are recorded."""
    loaded = config.load_data()
    derived = derive(config, loaded)
    derived["dtype_policy"] = place.policy if place else "float32"
    derived["replicas"] = place.replicas if place else 1
    if config.distribute == "data-parallel" and place is not None:
        derived.update(processes=place.processes, backend=keras.backend.backend())
        processes.check_divisible(derived["batch_size"], place.replicas,
                                  config.batch_size == "full")
        loaded = processes.trimmed(loaded, place.local_devices)
    if config.deterministic:
        seeding.enable_determinism()
    with seeding.seeded(config.seed + epochs_done):
        if model is None:
            model = build_model(config, loaded.spec)
    derived["steps_per_execution"] = steps_per_execution(
        config.steps_per_execution, derived["steps_per_epoch"],
        derived["batch_size"] * model.count_params())
    plan = (registry.get_recipe(config.recipe).phases or phases.single)(config.hparams,
                                                                        config.epochs)
    return Prepared(config, loaded, derived, model, phases.capped(plan, phases.epoch_cap()),
                    place)


def open_run(prepared: Prepared, echo: Echo = print, runs_dir=None) -> runs.Run:
    """Create the run directory (in ``runs_dir``, default the config's) and write its
    config.json: the resolved config, the run's name, creation time, versions and the derived
    settings."""
    config = prepared.config
    run = runs.create_run(runs_dir or config.runs_dir, config.run_name())
    try:
        write_config(prepared, run)
    except LabkitError:
        shutil.rmtree(run.path, ignore_errors=True)  # nothing of this run exists yet
        raise
    if runs_dir is None:
        echo(f"Run directory: {run.path}")
    return run


def write_config(prepared: Prepared, run: runs.Run) -> None:
    config = prepared.config
    spec = prepared.loaded.spec
    record = {**config.to_dict(), "format": layout.FORMAT, "run": run.path.name,
              "created": dt.datetime.now().isoformat(timespec="seconds"),
              "versions": versions(), "derived": prepared.derived, "model_inputs": layout.RAW,
              "data_spec": {"input_shape": list(spec.input_shape),
                            "num_classes": spec.num_classes, "task": spec.task,
                            "class_names": list(spec.class_names),
                            "feature_names": list(spec.feature_names),
                            "preprocessing": spec.preprocessing.to_dict(),
                            "targets": target_record(prepared),
                            "input_range": None if prepared.loaded.streaming
                            else ranges.observed(prepared.loaded.train[0])}}
    files.write_json(run.file(layout.CONFIG), record)


def target_record(prepared: Prepared) -> dict | None:
    """config.json's ``data_spec.targets``: the mean and standard deviation a regression model
    standardises its targets with (in its last layer), or None."""
    spec = prepared.loaded.spec
    if not scales_targets(prepared.config, spec):
        return None
    return {"mean": list(spec.target_mean), "std": list(spec.target_std),
            "layer": TARGET_UNITS}


def checkpoint_bytes(model) -> int:
    """About how large one checkpoint of ``model`` is: float32 weights and up to two optimizer
    slots per weight (Adam's moments), plus the archive's own files."""
    return 3 * 4 * model.count_params() + 64 * 1024


def check_room(runs_dir, model) -> None:
    """Before a run starts: its runs folder can be created and written, and holds room for two
    checkpoints of ``model`` (last.keras and best.keras); a LabkitError says what is wrong."""
    folder = Path(runs_dir)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = tempfile.NamedTemporaryFile(dir=folder, prefix=".labkit-probe-")
        probe.close()
        free = shutil.disk_usage(folder).free
    except OSError as err:
        raise files.FileFault(folder, err) from None
    need = 2 * checkpoint_bytes(model)
    if free < need:
        raise LabkitError(f"Not enough room on the device holding {folder}: {free / 2**20:.1f} "
                          f"MB free, and two checkpoints of this model need about "
                          f"{need / 2**20:.1f} MB. Free some space, or choose --runs-dir on "
                          "another disk.")


def fit_and_finish(prepared: Prepared, run: runs.Run, saved: checkpoint.Checkpoint | None = None,
                   rows: list[dict] | None = None,
                   stop: threading.Event | None = None) -> runs.Run:
    """Fit the plan (continuing ``saved``) with a recorder over ``rows`` so far, then finish;
    ``stop`` set: stop at the next epoch boundary (:class:`Interrupted`)."""
    config = prepared.config
    recorder = RunRecorder(run, prepared.model, config.monitor, rows=rows or [],
                           with_phase=len(prepared.plan) > 1,
                           state=saved.state if saved else None,
                           divergence_factor=config.divergence_factor, stop=stop)
    try:
        try:
            fit_phases(prepared, recorder, saved)
        except KeyboardInterrupt as err:
            recorder.interrupted()
            raise Interrupted(run, interrupts.exit_code(err)) from None
        if recorder.diverged:
            recorder.finish("diverged", {"hint": divergence_message(config, recorder.diverged)})
            return run
        finish(prepared, run, recorder)
    except files.FileFault as fault:
        done = recorder.stop_at_checkpoint(str(fault))
        raise StoppedByFault(f"{fault} Training stopped; {run.path} keeps {done} finished "
                             f"epochs and every file in it is whole. Once that is fixed, "
                             f"continue with: labkit train --resume {run.path}", run) from None
    except Exception as err:
        place = prepared.place
        if place is None or place.processes == 1 or isinstance(err, LabkitError):
            raise
        # Another process of the group died: the collective in flight fails here.
        reason = str(err).strip().splitlines()[0][:300] if str(err).strip() else repr(err)
        done = recorder.stop_at_checkpoint(f"the process group broke: {reason}")
        raise StoppedByFault(f"Process {place.process_id}: another process of the group "
                             f"stopped ({reason}). {run.path if place.main else 'The run'} "
                             f"keeps {done} finished epochs; continue every process with "
                             f"--resume (labkit launch --processes {place.processes} -- train "
                             f"--resume RUN).", run) from None
    finally:
        recorder.writer.close()  # a checkpoint being written is finished before anything else
    return run


def fit_phases(prepared: Prepared, recorder: RunRecorder,
               saved: checkpoint.Checkpoint | None = None) -> None:
    """Fit the model phase after phase; epochs are numbered across phases. With ``saved``,
    finished phases are skipped and the interrupted one continues where it stopped."""
    config, model = prepared.config, prepared.model
    state = saved.state if saved else {"phase": 0, "phase_epochs": 0, "phase_done": False}
    for index, phase in enumerate(prepared.plan):
        if index < state["phase"] or (index == state["phase"] and state["phase_done"]):
            continue
        resuming = saved is not None and index == state["phase"]
        with (seeding.seeded(phase.seed + (state["phase_epochs"] if resuming else 0))
              if phase.seed is not None else contextlib.nullcontext()):
            target = phase.prepare(model)
        features = None
        if phase.split is not None and not prepared.loaded.streaming and not config.augment \
                and config.distribute != "data-parallel":  # there every pass is sharded
            base, target = phase.split(model)  # a frozen base: compute its features once

            def features(x, base=base):
                return base.predict(x, batch_size=prepared.derived["eval_batch_size"],
                                    verbose=0)
        compile_model(target, config, prepared.loaded.spec, phase.learning_rate,
                      prepared.derived["steps_per_epoch"],
                      prepared.derived["steps_per_execution"])
        if resuming and saved.optimizer:
            checkpoint.restore_optimizer(target.optimizer, target.trainable_variables,
                                         saved.optimizer)
        controls = training_controls(config, saved if resuming else None,
                                     recorder.run.file(layout.TENSORBOARD))
        already = state["phase_epochs"] if resuming else 0
        recorder.start_phase(index, phase.name, phase.epochs, already, controls)
        start, end = len(recorder.rows), len(recorder.rows) + phase.epochs - already
        kwargs, verbose = fit_kwargs(prepared, features), progress_mode()
        callbacks = EpochCallbacks([*controls, recorder, *heartbeat()], model=target,
                                   verbose=verbose, epochs=end, steps=steps_of(kwargs["x"]),
                                   history=True)
        target.fit(initial_epoch=start, epochs=end, callbacks=callbacks, verbose=verbose,
                   **kwargs)
        if recorder.diverged:
            return
        recorder.end_phase()


def finish(prepared: Prepared, run: runs.Run, recorder: RunRecorder) -> None:
    """Save model.keras (compiled, taking raw inputs: the dataset's preprocessing first), the
    decision boundary of a 2-D run, the test metrics and the final metrics.json with status
    ``completed``."""
    model, loaded = prepared.model, prepared.loaded
    if getattr(model, "optimizer", None) is None or not model.optimizer.built:  # fit in parts
        compile_model(model, prepared.config, loaded.spec)
        model.optimizer.build(model.trainable_variables)
    saved = runs.with_preprocessing(model, loaded.spec.preprocessing)
    if saved is not model:  # compiled too, so `evaluate` works on the loaded file
        optimizer = type(model.optimizer).from_config(model.optimizer.get_config())
        tasks.compile_for(saved, optimizer, loaded.spec.task,
                          recipe_loss(prepared.config, loaded.spec.task),
                          loss_weight=target_weight(prepared.config, loaded.spec))
        optimizer.build(saved.trainable_variables)
    if loaded.spec.input_shape == (2,):
        plots.decision_boundary(model, loaded, run.file(layout.BOUNDARY))
    test = {}
    with recorder.curves_meanwhile():
        with files.atomic_path(run.file(layout.MODEL)) as tmp:
            saved.save(tmp)
        runs.save_samples(run, loaded.val if loaded.val is not None else loaded.test)
        if loaded.test is not None:
            test = tasks.evaluate_split(model, loaded.test, prep=loaded.spec.preprocessing,
                                        batch_size=prepared.derived["eval_batch_size"])
    recorder.finish("completed", test, plot=False)


def learning_warnings(model, num_classes: int, task: str = "classification") -> list[str]:
    """Why a built model may not learn, found from its layers' shapes (nested models included):
    several convolutions working on 1×1 feature maps (the input pooled away), or a hidden
    dense layer narrower than the classes. Each is one sentence; none: an empty list."""
    flat, found = [], []

    def walk(model):
        for layer in model.layers:
            (walk if isinstance(layer, keras.Model) else flat.append)(layer)

    walk(model)
    collapsed = [layer.name for layer in flat if isinstance(layer, keras.layers.Conv2D)
                 and tuple(layer.input.shape[1:3]) == (1, 1)]
    if len(collapsed) >= 2:
        found.append(f"{len(collapsed)} convolution layers ({collapsed[0]} to {collapsed[-1]}) "
                     f"work on 1×1 feature maps: pooling has shrunk the "
                     f"{'×'.join(map(str, model.input.shape[1:3]))} input away, so they see no "
                     "spatial pattern and mostly add depth that is hard to train. Use larger "
                     "images (--image-size) or a recipe with fewer pooling steps.")
    dense = [layer for layer in flat if isinstance(layer, keras.layers.Dense)]
    if task == "classification" and num_classes > 2:
        narrow = [f"{layer.name} ({layer.units})" for layer in dense[:-1]
                  if layer.units < num_classes]
        if narrow:
            found.append(f"hidden layer{'s' if len(narrow) > 1 else ''} {', '.join(narrow)} "
                         f"{'are' if len(narrow) > 1 else 'is'} narrower than the "
                         f"{num_classes} classes: every class must squeeze through fewer units "
                         "than there are classes. Widen it (e.g. --set dense_units or units).")
    return found


def build_model(config: TrainConfig, spec: data.DatasetSpec):
    """The recipe's model for ``spec``; a hyperparameter the recipe rejects is a LabkitError.
    A regression model answers in the targets' units (:func:`in_target_units`)."""
    model = registry.build_checked(config.recipe, spec.input_shape, spec.num_classes,
                                   config.hparams, spec.task)
    if scales_targets(config, spec):
        model = in_target_units(model, spec.target_mean, spec.target_std)
    return model


def scales_targets(config: TrainConfig, spec: data.DatasetSpec) -> bool:
    """Whether this run learns standardised targets: regression with known target statistics,
    unless the recipe has a loss of its own (the Playground's exact mode, on raw targets)."""
    return spec.task == "regression" and spec.target_std is not None and \
        recipe_loss(config, spec.task) is None


def in_target_units(model, mean, std):
    """``model`` with a last ``Rescaling`` layer, ``y = output · std + mean`` per target: the
    recipe's layers learn standardised targets (an output near 0 is the mean) and the model
    answers in the targets' own units, as predict, the metrics and exports see it."""
    unit = keras.layers.Rescaling(list(std), list(mean), name=TARGET_UNITS)
    return keras.Model(model.inputs, unit(model.outputs[0]), name=model.name)


TARGET_UNITS = "target_units"  # the layer in_target_units adds


def compile_model(model, config: TrainConfig, spec: data.DatasetSpec,
                  learning_rate: float | None = None, steps_per_epoch: int = 1,
                  steps_per_call: int = 1) -> None:
    """Compile for ``spec``'s task with the config's optimizer, hyperparameters, clipping and
    schedule (at ``learning_rate`` instead of the config's when given), ``steps_per_call``
    training steps per compiled call."""
    optimizer = optim.make(config.optimizer, learning_rate or config.learning_rate,
                           config.optimizer_params, config.schedule, steps_per_epoch, model)
    tasks.compile_for(model, optimizer, spec.task, recipe_loss(config, spec.task),
                      steps_per_call, target_weight(config, spec))


def steps_per_execution(setting: int | str, steps_per_epoch: int, step_weights: int) -> int:
    """``--steps-per-execution``: the number given, or for ``auto`` one chosen from how much
    work a step is — ``step_weights``, the examples in a batch times the model's weights — so
    that tiny, dispatch-bound steps are grouped (measured in bench/bench_train.py: see the
    README) and large ones, where grouping gains nothing, are not; never more than an epoch's
    steps."""
    if setting != "auto":
        return max(1, min(int(setting), steps_per_epoch))
    if step_weights > AUTO_STEP_WEIGHTS:
        return 1
    return max(1, min(AUTO_STEPS, steps_per_epoch))


# `--steps-per-execution auto`: steps of at most this many example-weights (batch × weights)
# are grouped AUTO_STEPS to a call. Chosen by measurement (bench_train.py, 2-core CPU).
AUTO_STEP_WEIGHTS, AUTO_STEPS = 16 * 200_000, 16


def target_weight(config: TrainConfig, spec: data.DatasetSpec) -> float | None:
    """For a regression model in target units (:func:`in_target_units`): the factor on its mean
    squared error, 1 / the training targets' variance (their mean variance for several), so the
    loss is counted in target standard deviations, as training on standardised targets would
    count it, with Keras's own loss (the model files load without labkit). None otherwise."""
    if not scales_targets(config, spec):
        return None
    return float(1 / np.mean(np.square(spec.target_std)))


def recipe_loss(config: TrainConfig, task: str):
    """The recipe's own loss for these hyperparameters (see ``registry.recipe``), or None."""
    own = registry.get_recipe(config.recipe).loss
    return own(config.hparams, task) if own else None


def fit_kwargs(prepared: Prepared, features=None) -> dict:
    """``model.fit`` arguments: the training pipeline (reshuffled every epoch, augmented when
    asked), the validation inputs and class weights. ``features`` (a frozen base's ``predict``)
    maps both first when a phase trains only a head."""
    config, loaded, derived = prepared.config, prepared.loaded, prepared.derived
    prep, cache = loaded.spec.preprocessing, not loaded.cached
    place = prepared.place
    shard = (place.process_id, place.processes, place.replicas) if place is not None else None
    kwargs = {
        "x": pipeline.training_batches(loaded.train, derived["batch_size"], prep=prep,
                                       seed=config.seed, augment=config.augment,
                                       features=features, cache=cache,
                                       class_weight=derived["class_weight"],
                                       shuffle=config.shuffle,
                                       shard=shard if config.distribute == "data-parallel"
                                       else None),
        "validation_data": pipeline.inputs(loaded.val, derived["eval_batch_size"], prep=prep,
                                           features=features, cache=cache),
        "shuffle": False,  # the pipeline shuffles
    }
    if isinstance(kwargs["validation_data"], tuple):  # arrays (a pipeline is batched already)
        kwargs["validation_batch_size"] = derived["eval_batch_size"]
    if derived["class_weight"] and not isinstance(kwargs["x"], ArrayBatches):
        kwargs["class_weight"] = derived["class_weight"]  # ArrayBatches yields them itself
    return kwargs


def derive(config: TrainConfig, loaded: data.Data) -> dict:
    """What the config implies for this data: batch size in examples, steps per epoch, class
    weights (``balanced``: n / (k · count of the class), scikit-learn's formula)."""
    n = pipeline.count(loaded.train)
    batch_size = n if config.batch_size == "full" else config.batch_size
    weights = config.class_weight
    if weights == "balanced":
        from sklearn.utils.class_weight import compute_class_weight

        labels = pipeline.labels(loaded.train)
        present = np.unique(labels)
        values = compute_class_weight("balanced", classes=present, y=labels)
        weights = {int(c): float(w) for c, w in zip(present, values, strict=True)}
    if weights:  # every class needs a weight (Keras indexes a table by label); unnamed ones 1
        weights = {c: float(weights.get(c, 1.0)) for c in range(loaded.spec.num_classes)}
    return {"train_examples": n, "batch_size": batch_size,
            "steps_per_epoch": math.ceil(n / batch_size),
            "eval_batch_size": eval_batch_size(
                batch_size, loaded.spec.input_shape, config.distribute,
                tuple(len(split[1]) for split in (loaded.val, loaded.test)
                      if isinstance(split, tuple))),
            "class_weight": weights}


def eval_batch_size(batch_size: int, input_shape, distribute: str | None = None,
                    splits: tuple[int, ...] = ()) -> int:
    """The batch of the validation and test passes. Small inputs are evaluated in large
    batches, up to :data:`EVAL_INPUT_VALUES` input values and :data:`EVAL_BATCH_LIMIT`
    examples: fewer steps to dispatch and fewer shapes to compile (each costs a compilation,
    ~0.3 s for the course's cnn under JAX). ``splits``: the sizes of the in-memory validation
    and test splits, which the batch divides when it can (every step of both passes one
    compiled shape), or else holds the validation split whole. Large inputs are evaluated in
    training batches. The metrics do not depend on it: Keras averages over examples.
    Data-parallel runs keep the training batch, which every process and device splits
    evenly."""
    fits = min(EVAL_BATCH_LIMIT, EVAL_INPUT_VALUES // max(1, math.prod(input_shape)))
    if distribute == "data-parallel" or fits <= batch_size:
        return min(batch_size, EVAL_BATCH_LIMIT)
    if splits:
        common = math.gcd(*splits)
        even = [d for d in range(batch_size, min(fits, common) + 1) if common % d == 0]
        if even:
            return even[-1]
        if batch_size <= splits[0] <= fits:
            return splits[0]
    return fits


# the validation and test passes' batch (eval_batch_size): up to this many input values, and
# never more examples than this
EVAL_INPUT_VALUES, EVAL_BATCH_LIMIT = 2**20, 1024


def previous_rows(run: runs.Run, epochs: int) -> list[dict]:
    """history.csv's rows up to ``epochs`` (later ones were written after the last checkpoint)."""
    history = run.history
    if not epochs or history.empty:
        return []
    return history[history[layout.EPOCH] <= epochs].to_dict("records")


def versions() -> dict[str, str]:
    found = {"labkit": __version__, "keras": keras.__version__, "backend": keras.backend.backend(),
             "python": platform.python_version()}
    if "tensorflow" in sys.modules or keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        found["tensorflow"] = tf.__version__
    return found


def divergence_message(config: TrainConfig, diverged: dict) -> str:
    """Why a run stopped on an exploding loss, and what to try."""
    hints = [f"lower --learning-rate (it was {diverged['learning_rate']:.3g})"]
    if config.clipnorm is None and config.clipvalue is None:
        hints.append("clip gradients with --clipnorm 1.0")
    chosen = config.hparams.get("kernel_initializer")
    if chosen is not None and chosen != "glorot_uniform":  # the recipes' default, Keras's too
        hints.append(f"start from smaller weights: --set kernel_initializer=glorot_uniform, "
                     f"the default (it was {chosen})")
    loss = diverged["loss"]
    if isinstance(loss, str):  # nan or inf
        what = f"The loss became {loss} in epoch {diverged['epoch']}"
    else:
        what = (f"The loss grew to {loss:.4g} in epoch {diverged['epoch']}, more than "
                f"{config.divergence_factor:g}× the first epoch's {diverged['first_loss']:.4g}")
    return (f"{what}: the updates grew without bound (exploding gradients). "
            f"Try: {'; '.join(hints)}.")


def summary(run: runs.Run) -> str:
    """What ``labkit train`` prints when a run completes: epochs, early stopping, and the final,
    best and test metrics of its task (losses left out)."""
    metrics = run.metrics
    lines = [f"Finished {metrics['epochs_completed']} epochs → {run.path}"]
    if metrics.get("stopped_epoch"):
        restored = metrics.get("restored_epoch")
        lines.append(f"  early stopping at epoch {metrics['stopped_epoch']}"
                     + (f"; weights restored from epoch {restored}" if restored else ""))
    shown = [k for k in metrics if k.startswith(("final_", "test_", "best_val_accuracy"))
             and k != f"final_{layout.LEARNING_RATE}" and "loss" not in k]
    for key in sorted(shown, key=lambda k: (k.startswith("test_"), k.startswith("best_"))):
        if isinstance(metrics[key], float):
            lines.append(f"  {key:<20} {metrics[key]:.4f}")
    return "\n".join(lines)


def heartbeat() -> list:
    """Outside a terminal Keras writes a line per epoch; a long epoch (the cats-vs-dogs one,
    ~100 s on a CPU) also gets a line every ~10 s (:class:`labkit.callbacks.Heartbeat`)."""
    if progress_mode() == 1:
        return []
    from labkit.callbacks import Heartbeat

    return [Heartbeat()]


def progress_mode() -> int:
    """Keras's progress bar on a terminal; one line per epoch in logs and CI."""
    return 1 if sys.stdout.isatty() else 2
