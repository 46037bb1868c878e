"""One resolved, validated training config; every check here runs before TensorFlow starts.

:meth:`TrainConfig.resolve` is the one step that validates every option and spells out every
default; the CLI (through :func:`resolve_train_config`) and the Python front door both end in it,
and training resolves only a config that has not been resolved yet.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import importlib.util
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from labkit import augment, data, optim, options, registry, runs, tasks
from labkit.devices import check as check_placement
from labkit.errors import LabkitError
from labkit.layout import RECORD_ONLY


@dataclass
class TrainConfig:
    """Everything ``labkit train`` needs; saved as a run's ``config.json`` so it can be rerun."""

    recipe: str
    hparams: dict[str, Any] = field(default_factory=dict)  # recipe hyperparameters (--set)
    dataset: str = "digits"
    task: str | None = None  # None: the dataset's; binary and classification swap on 2 classes
    data_dir: str | None = None  # TFDS data directory
    data_options: dict[str, Any] = field(default_factory=dict)  # e.g. Playground noise
    epochs: int = 10  # R keras's fit() default; Python's is 1
    batch_size: int | str = 32  # Keras's default; "full": the whole training set (full-batch GD)
    optimizer: str = "adam"
    learning_rate: float | None = None  # None: the optimizer's Keras default
    momentum: float | None = None  # α of momentum / nesterov (default 0.9), rmsprop's momentum
    rho: float | None = None  # rmsprop's decay of the squared-gradient average
    beta_1: float | None = None  # adam's first-moment decay
    beta_2: float | None = None  # adam's second-moment decay
    epsilon: float | None = None  # rmsprop / adam's small constant δ
    clipnorm: float | None = None  # clip each gradient's norm to this
    clipvalue: float | None = None  # clip each gradient component to ±this
    schedule: str | dict | None = None  # learning-rate schedule; None: constant
    monitor: str | None = None  # picks the best epoch; None: val_loss, or loss without validation
    early_stopping: str | dict | None = None  # e.g. {"patience": 5}; None: off
    augment: str | dict | None = None  # e.g. "flip,rotation=0.1"; None: off
    class_weight: str | dict | None = None  # "balanced" or {class: weight}; None: all 1
    validation_split: float = 0.2
    seed: int = 42
    shuffle: bool = True  # reshuffle the training data every epoch; False: the data's order
    deterministic: bool = False  # TensorFlow op determinism: identical reruns, slower
    tensorboard: bool = False  # TensorBoard logs in RUN/tensorboard
    precision: str = "float32"  # "mixed": float16 on a GPU, bfloat16 on a CPU that has it
    # Training steps per compiled call (Keras's compile(steps_per_execution=)); "auto": chosen
    # from the steps' size (labkit.training.steps_per_execution)
    steps_per_execution: int | str = 1
    distribute: str = "none"  # "mirrored" (GPUs or --devices CPUs), "multi-worker" (TF_CONFIG)
    devices: int | None = None  # logical CPU devices for "mirrored" without GPUs
    # A loss above this many times the first epoch's is an explosion, like a non-finite one;
    # 0 turns the check off (non-finite losses always stop a run).
    divergence_factor: float = 100.0
    name: str | None = None  # run directory name; default recipe-dataset-time
    runs_dir: str = "runs"

    def resolve(self) -> TrainConfig:
        """Validate every option and return a copy with every default spelled out
        (hyperparameters, learning rate, schedule, monitor, early stopping, augmentation, class
        weights), so the saved config reruns the same way even if a default changes later.

        Raises:
            LabkitError: naming the option and what it allows.
        """
        recipe = registry.get_recipe(self.recipe)
        recipe.check_hyperparameters(self.hparams)
        spec = data.catalog_spec(self.dataset, self.data_options)
        task = resolve_task(self.task, spec)
        if not recipe.accepts(spec.input_shape):
            raise LabkitError(
                f"Recipe {self.recipe!r} takes {recipe.inputs} inputs; dataset {self.dataset!r} "
                f"has input shape {spec.input_shape}. Try `mlp` or an image dataset."
            )
        _check_int("epochs", self.epochs, minimum=1, maximum=MAX_EPOCHS)
        if self.batch_size != "full":
            _check_int("batch_size", self.batch_size, minimum=1, extra=' or "full"',
                       maximum=MAX_BATCH)
        _check_int("seed", self.seed, minimum=0)
        if self.steps_per_execution != "auto":
            _check_int("steps_per_execution", self.steps_per_execution, minimum=1,
                       extra=' or "auto"', maximum=MAX_BATCH)
        optim.check(self.optimizer, self.learning_rate, self.optimizer_params)
        split = self.validation_split
        if isinstance(split, bool) or not isinstance(split, (int, float)) or not 0 <= split < 1:
            raise LabkitError(
                f"--validation-split must be in [0, 1). Received: {split!r}")
        factor = self.divergence_factor
        if isinstance(factor, bool) or not isinstance(factor, (int, float)) or \
                not (factor == 0 or factor > 1):
            raise LabkitError(f"--divergence-factor must be > 1, or 0 for off. "
                              f"Received: {factor!r}")
        if self.name is not None:
            runs.checked_child(self.runs_dir, self.name)  # stays inside --runs-dir
        check_placement(self.precision, self.distribute, self.devices)
        for flag in ("deterministic", "tensorboard", "shuffle"):
            if not isinstance(getattr(self, flag), bool):
                raise LabkitError(f"--{flag} is true or false. Received: {getattr(self, flag)!r}")
        if self.tensorboard and importlib.util.find_spec("tensorboard") is None:
            raise LabkitError("--tensorboard needs the tensorboard package: "
                              "pip install tensorboard")
        monitor = self.monitor or ("val_loss" if self.validation_split else "loss")
        if monitor not in tasks.monitors(task):
            raise LabkitError(f"--monitor {monitor} is not measured in a {task} run; choose one "
                              f"of {', '.join(tasks.monitors(task))}.")
        if monitor.startswith("val_") and not self.validation_split:
            raise LabkitError(f"--monitor {monitor} needs validation data; --validation-split "
                              "is 0. Use --monitor loss or accuracy.")
        if self.class_weight not in (None, "none", "") and task not in ("classification", "binary"):
            raise LabkitError(f"--class-weight applies to classification and binary tasks, not "
                              f"{task}.")
        resolved = dataclasses.replace(
            self, task=task, hparams={**recipe.hyperparameters, **self.hparams},
            learning_rate=self.learning_rate or optim.default_learning_rate(self.optimizer),
            schedule=optim.resolve_schedule(self.schedule, self.epochs), monitor=monitor,
            early_stopping=resolve_early_stopping(self.early_stopping),
            augment=augment.resolve(self.augment, spec.input_shape),
            class_weight=resolve_class_weight(self.class_weight, spec.num_classes))
        resolved._resolved = True
        return resolved

    @property
    def is_resolved(self) -> bool:
        """Whether this config came out of :meth:`resolve` (not a field: never saved)."""
        return getattr(self, "_resolved", False)

    @property
    def optimizer_params(self) -> dict[str, Any]:
        """The optimizer hyperparameters and clipping that were set."""
        names = optim.OPTIMIZER_PARAMS + optim.CLIPPING
        return {k: getattr(self, k) for k in names if getattr(self, k) is not None}

    def load_data(self, data_dir: str | None = None) -> data.Data:
        """The dataset this config trains on, split as training splits it, with the config's
        task (``data_dir`` overrides the config's, e.g. when the TFDS folder moved)."""
        return data.load(self.dataset, validation_split=self.validation_split,
                         data_dir=data_dir or self.data_dir, options=self.data_options,
                         task=self.task)

    def run_name(self, now: dt.datetime | None = None) -> str:
        stamp = (now or dt.datetime.now()).strftime("%Y%m%d-%H%M%S")
        dataset = Path(self.dataset.rstrip("/")).name.replace(":", "-")  # a path: its last part
        return self.name or f"{self.recipe}-{dataset}-{stamp}"

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - names - RECORD_ONLY)
        if unknown:
            raise LabkitError(f"Unknown config key(s): {', '.join(unknown)}. "
                              f"Known: {', '.join(sorted(names))}.")
        if "recipe" not in values:
            raise LabkitError("The config names no `recipe`.")
        return cls(**{k: v for k, v in values.items() if k in names})


# Upper bounds that only a typo or a crafted config reaches; refused before anything is allocated.
MAX_EPOCHS, MAX_BATCH = 100_000, 1_000_000
# config.json's keys that are not training options: what it records about the run
# (layout.RECORD_ONLY), where the run goes, and the nested recipe and dataset options.
NOT_OPTIONS = RECORD_ONLY | {"name", "runs_dir", "hparams", "data_options"}
# Every metric --monitor may name; which apply depends on the task (labkit.tasks.monitors).
MONITORS = tuple(dict.fromkeys(m for task in tasks.TASKS for m in tasks.monitors(task)
                               if m.startswith("val_"))) + \
    tuple(dict.fromkeys(m for task in tasks.TASKS for m in tasks.monitors(task)
                        if not m.startswith("val_")))
EARLY_STOPPING = {"patience": 5, "min_delta": 0.0, "restore_best": True}


def resolve_task(value: str | None, spec: data.DatasetSpec) -> str:
    """``--task`` checked against the data: the dataset's own task, binary and
    classification in place of each other on two classes, or regression on classes that are
    numbers (an integer target: the counts 0..8 of a CSV, say)."""
    if value is None:
        return spec.task
    tasks.get(value)
    swappable = {"classification", "binary"}
    if value == "regression" and data.numbered_classes(spec):
        return value
    if value != spec.task and not (spec.num_classes == 2 and {value, spec.task} <= swappable):
        unit = {"regression": "target(s)", "multilabel": "labels"}.get(spec.task, "classes")
        raise LabkitError(f"--task {value} does not fit dataset {spec.name!r}, a {spec.task} "
                          f"task with {spec.num_classes} {unit}.")
    return value


def resolve_early_stopping(value: str | dict | bool | None) -> dict[str, Any] | None:
    """``"patience=3,min_delta=0.01"``, ``"on"``, a mapping or None → a checked dict or None."""
    if value in (None, False, "off", "none", ""):
        return None
    if value in (True, "on"):
        value = {}
    if isinstance(value, str):
        try:
            value = options.parse_settings(value)
        except ValueError as err:
            raise LabkitError(f"--early-stopping: {err}. Example: --early-stopping "
                              "patience=5,min_delta=0.001") from None
    if not isinstance(value, dict):
        raise LabkitError(f"--early-stopping takes on, off or key=value settings. "
                          f"Received: {value!r}")
    unknown = sorted(set(value) - set(EARLY_STOPPING))
    if unknown:
        raise LabkitError(f"--early-stopping has no {', '.join(unknown)}. "
                          f"Known: {', '.join(EARLY_STOPPING)}.")
    resolved = {**EARLY_STOPPING, **value}
    if isinstance(resolved["patience"], bool) or not isinstance(resolved["patience"], int) \
            or resolved["patience"] < 0:
        raise LabkitError(f"--early-stopping patience must be an integer >= 0 (epochs). "
                          f"Received: {resolved['patience']!r}")
    delta = resolved["min_delta"]
    if isinstance(delta, bool) or not isinstance(delta, (int, float)) or delta < 0:
        raise LabkitError(f"--early-stopping min_delta must be >= 0. Received: {delta!r}")
    if not isinstance(resolved["restore_best"], bool):
        raise LabkitError("--early-stopping restore_best must be true or false. "
                          f"Received: {resolved['restore_best']!r}")
    return resolved


def resolve_class_weight(value: str | dict | None, num_classes: int) -> str | dict | None:
    """``"balanced"``, ``{class: weight}`` (``"0=1,1=5"`` on the command line) or None, checked;
    JSON's string keys become class indices."""
    if value in (None, "none", ""):
        return None
    if value == "balanced":
        return value
    if isinstance(value, str):
        try:
            value = {int(k.strip()): float(w) for k, _, w in
                     (part.partition("=") for part in value.split(","))}
        except ValueError:
            raise LabkitError("--class-weight is balanced or CLASS=WEIGHT pairs, e.g. "
                              f"--class-weight 0=1,1=5. Received: {value!r}") from None
    if not isinstance(value, dict):
        raise LabkitError(f"--class-weight is balanced or a mapping. Received: {value!r}")
    weights = {}
    for key, weight in value.items():
        try:
            cls = int(key)
        except (TypeError, ValueError):
            cls = -1
        if not 0 <= cls < num_classes:
            raise LabkitError(f"--class-weight: class {key!r} is not one of 0..{num_classes - 1}.")
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or weight <= 0:
            raise LabkitError(f"--class-weight: weight of class {cls} must be > 0. "
                              f"Received: {weight!r}")
        weights[cls] = float(weight)
    return weights


def _check_int(option: str, value: Any, *, minimum: int, extra: str = "",
               maximum: int | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum or (
            maximum is not None and value > maximum):
        too_big = maximum is not None and isinstance(value, int) and value > maximum
        bound = f"<= {maximum} (a larger value is surely a typo)" if too_big else f">= {minimum}"
        raise LabkitError(f"--{option.replace('_', '-')} must be an integer {bound}{extra}. "
                          f"Received: {value!r}")


# Flags that are an integer or one word, parsed by parse_counts
COUNTS = {"batch_size": "full", "steps_per_execution": "auto"}


def parse_counts(flags: dict) -> dict:
    """``flags`` with those of :data:`COUNTS` parsed (:func:`parse_count`)."""
    return {**flags, **{name: parse_count(flags.get(name), name, word)
                        for name, word in COUNTS.items() if name in flags}}


def parse_count(text: str | None, option: str, word: str) -> int | str | None:
    """A flag that is an integer or one ``word`` (``--batch-size N|full``,
    ``--steps-per-execution N|auto``)."""
    if text is None or text == word:
        return text
    try:
        return int(text)
    except ValueError:
        raise LabkitError(f'--{option.replace("_", "-")} must be an integer >= 1 or "{word}". '
                          f"Received: {text!r}") from None


def read_config_file(path: str | Path) -> dict[str, Any]:
    """A config from a JSON or YAML file (a run's config.json works as is)."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as err:
        raise LabkitError(f"Cannot read config file {str(path)!r}: {err.strerror}.") from None
    try:
        if path.suffix in (".yaml", ".yml"):
            import yaml

            values = yaml.safe_load(text)
        else:
            values = json.loads(text)
    except Exception as err:  # json and yaml raise different types; both mean a malformed file
        message = f"Config file {str(path)!r} is malformed: {err}".splitlines()[0]
        raise LabkitError(message) from None
    if not isinstance(values, dict):
        raise LabkitError(f"Config file {str(path)!r} must hold a mapping of options.")
    return values


def resolve_train_config(*, recipe: str | None = None, config_file: str | Path | None = None,
                         flags: dict[str, Any] | None = None, hparams: dict[str, Any] | None = None,
                         data_options: dict[str, Any] | None = None,
                         ignore: tuple[str, ...] = ()) -> TrainConfig:
    """The resolved config of ``labkit train`` and ``labkit.train``: merge, lowest first, the
    defaults, the recipe's preferred training options, the config file, the recipe and flags
    given (None: not given), ``--set`` hyperparameters and ``--data-option`` values; then
    :meth:`TrainConfig.resolve`. ``ignore``: the file's keys another command reads (a sweep's
    ``sweep:`` block)."""
    flags, hparams, data_options = flags or {}, hparams or {}, data_options or {}
    values = read_config_file(config_file) if config_file else {}
    values = {k: v for k, v in values.items() if k not in RECORD_ONLY and k not in ignore}
    if recipe:
        if values.get("recipe") not in (None, recipe):
            values["hparams"] = {}  # another recipe's hyperparameters would not apply
        values["recipe"] = recipe
    if "recipe" not in values:
        raise LabkitError("Name a RECIPE (see `labkit recipes`) or pass --config FILE.")
    file_or_flags = {**values, **{k: v for k, v in flags.items() if v is not None}}
    preferred = registry.get_recipe(values["recipe"]).train_defaults
    values = {**preferred, **file_or_flags}
    values["hparams"] = {**values.get("hparams", {}), **hparams}
    values["data_options"] = {**values.get("data_options", {}), **data_options}
    return TrainConfig.from_dict(values).resolve()
