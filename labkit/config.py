"""One resolved, validated training config; every check here runs before TensorFlow starts."""

from __future__ import annotations

import ast
import dataclasses
import datetime as dt
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from labkit import data, optim, registry
from labkit.errors import LabkitError


@dataclass
class TrainConfig:
    """Everything ``labkit train`` needs; saved as a run's ``config.json`` so it can be rerun."""

    recipe: str
    hparams: dict[str, Any] = field(default_factory=dict)  # recipe hyperparameters (--set)
    dataset: str = "digits"
    data_dir: str | None = None  # TFDS data directory
    data_options: dict[str, Any] = field(default_factory=dict)  # e.g. Playground noise
    epochs: int = 10  # R keras's fit() default; Python's is 1
    batch_size: int = 32  # Keras's default
    optimizer: str = "adam"
    learning_rate: float | None = None  # None: the optimizer's Keras default
    validation_split: float = 0.2
    seed: int = 42
    name: str | None = None  # run directory name; default recipe-dataset-time
    runs_dir: str = "runs"

    def validate(self) -> TrainConfig:
        """Check every field; raise :class:`LabkitError` naming the option and what is allowed."""
        recipe = registry.get_recipe(self.recipe)
        unknown = sorted(set(self.hparams) - set(recipe.hyperparameters))
        if unknown:
            raise LabkitError(
                f"Recipe {self.recipe!r} has no hyperparameter {', '.join(map(repr, unknown))}. "
                f"Known: {', '.join(recipe.hyperparameters)}."
            )
        spec = data.catalog_spec(self.dataset)
        if not recipe.accepts(spec.input_shape):
            raise LabkitError(
                f"Recipe {self.recipe!r} takes {recipe.inputs} inputs; dataset {self.dataset!r} "
                f"has input shape {spec.input_shape}. Try `mlp` or an image dataset."
            )
        _check_int("epochs", self.epochs, minimum=1)
        _check_int("batch_size", self.batch_size, minimum=1)
        _check_int("seed", self.seed, minimum=0)
        optim.check(self.optimizer, self.learning_rate)
        if not isinstance(self.validation_split, (int, float)) or not 0 <= self.validation_split < 1:
            raise LabkitError(
                f"--validation-split must be in [0, 1). Received: {self.validation_split!r}")
        if self.name is not None and (not self.name or "/" in self.name or self.name.startswith(".")):
            raise LabkitError(f"--name must be a plain folder name. Received: {self.name!r}")
        return self

    def resolved(self) -> TrainConfig:
        """A copy with every default spelled out (hyperparameters, learning rate), so the saved
        config reruns the same way even if a default changes later."""
        defaults = registry.get_recipe(self.recipe).hyperparameters
        return dataclasses.replace(
            self, hparams={**defaults, **self.hparams},
            learning_rate=self.learning_rate or optim.default_learning_rate(self.optimizer))

    def run_name(self, now: dt.datetime | None = None) -> str:
        stamp = (now or dt.datetime.now()).strftime("%Y%m%d-%H%M%S")
        return self.name or f"{self.recipe}-{self.dataset}-{stamp}"

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - names - {"versions", "created", "run"})
        if unknown:
            raise LabkitError(f"Unknown config key(s): {', '.join(unknown)}. "
                              f"Known: {', '.join(sorted(names))}.")
        if "recipe" not in values:
            raise LabkitError("The config names no `recipe`.")
        return cls(**{k: v for k, v in values.items() if k in names})


def _check_int(option: str, value: Any, *, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise LabkitError(f"--{option.replace('_', '-')} must be an integer >= {minimum}. "
                          f"Received: {value!r}")


def parse_value(text: str) -> Any:
    """A ``--set`` value: a Python literal (``0.5``, ``[64, 32]``, ``True``, ``None``), a comma list
    of literals (``64,32``), ``true``/``false``, or else the plain string (``relu``)."""
    lowered = text.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        pass
    stripped = text.strip()
    if stripped.startswith("[") and stripped.endswith("]"):  # [x1, x2] with bare words
        stripped = stripped[1:-1]
        return [parse_value(part) for part in stripped.split(",") if part.strip()]
    if "," in stripped and "(" not in stripped:
        return [parse_value(part) for part in stripped.split(",") if part.strip()]
    return stripped


def parse_assignments(items: tuple[str, ...] | list[str], option: str = "--set") -> dict[str, Any]:
    """``["units=[64, 32]", "dropout=0.2"]`` → ``{"units": [64, 32], "dropout": 0.2}``."""
    values = {}
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key.isidentifier():
            raise LabkitError(f"{option} takes key=value, e.g. {option} dropout=0.2. "
                              f"Received: {item!r}")
        values[key] = parse_value(raw)
    return values


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
        raise LabkitError(f"Config file {str(path)!r} is malformed: {err}".splitlines()[0]) from None
    if not isinstance(values, dict):
        raise LabkitError(f"Config file {str(path)!r} must hold a mapping of options.")
    return values


def resolve_train_config(*, recipe: str | None, config_file: str | None, flags: dict[str, Any],
                         hparams: dict[str, Any], data_options: dict[str, Any]) -> TrainConfig:
    """Merge, lowest first: defaults, the config file, the RECIPE argument and flags given,
    ``--set`` hyperparameters and ``--data-option`` values."""
    values = read_config_file(config_file) if config_file else {}
    values = {k: v for k, v in values.items() if k not in ("versions", "created", "run")}
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
    return TrainConfig.from_dict(values)
