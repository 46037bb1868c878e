"""The recipe registry: one dict, one decorator, and :func:`list_recipes`, :func:`get_recipe`,
:func:`build` (with :func:`build_checked`, the same for a command).

Recipes are plugins: labkit never imports them by name. A package declares its recipe modules
under the ``labkit.recipes`` entry-point group (the course's ``recipes`` package does, in
pyproject.toml), and every public module of such a package registers its build functions with
``@recipe(...)`` when it is imported. ``LABKIT_RECIPES`` (module names, comma-separated) adds
packages that are not installed, e.g. a checkout on ``PYTHONPATH``. Registration only records
the function, so listing recipes (and reading their hyperparameters from the signature) never
imports Keras or TensorFlow.
"""

from __future__ import annotations

import fnmatch
import functools
import importlib
import inspect
import os
import pkgutil
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from labkit import lecture
from labkit.errors import LabkitError
from labkit.options import did_you_mean

_REGISTRY: dict[str, Recipe] = {}
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
# Arguments every build function takes that are not hyperparameters: build(input_shape,
# num_classes, task="classification", *, hyperparameters...); the task picks the head.
STRUCTURAL = ("input_shape", "num_classes", "task")


class UnknownRecipeError(LabkitError, KeyError):
    """Raised for a recipe name that is not registered; the message suggests close matches."""

    def __str__(self) -> str:  # KeyError would quote the message
        return self.args[0]


@dataclass(frozen=True)
class Recipe:
    """A registered build function and what the CLI shows about it."""

    name: str
    summary: str
    topics: tuple[int, ...]  # lecture topics, numbered as in the outline (labkit.lecture)
    build: Callable[..., Any]
    detail: str = ""  # what of those topics it shows, e.g. "residual nets"
    inputs: str = "any"  # "any", "image" (h, w, c), "sequence" (t, c) or "points" (2-D sets)
    phases: Callable[[dict, int], list] | None = None  # see labkit.phases; None: one phase
    train_defaults: dict | None = None  # training options this recipe prefers (e.g. batch size)
    loss: Callable[[dict, str], Any] | None = None  # see recipe()

    @property
    def topic(self) -> str:
        """The lecture topics as shown to users: ``"19 Convolutional layer / 20 Pooling"``."""
        return lecture.describe(self.topics, self.detail)

    def accepts(self, input_shape: tuple) -> bool:
        """Whether this recipe builds for inputs of ``input_shape`` (by rank)."""
        return self.inputs == "any" or len(input_shape) == INPUT_RANKS[self.inputs]

    @property
    def hyperparameters(self) -> dict[str, Any]:
        """Hyperparameter names and defaults, read from the build function's signature."""
        params = inspect.signature(self.build).parameters.values()
        return {
            p.name: p.default
            for p in params
            if p.name not in STRUCTURAL and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
        }

    def check_hyperparameters(self, values: dict[str, Any]) -> None:
        """Raise a :class:`LabkitError` naming the keys of ``values`` this recipe does not take."""
        known = self.hyperparameters
        unknown = sorted(set(values) - set(known))
        if unknown:
            hint = did_you_mean(unknown[0], known) if len(unknown) == 1 else ""
            names = ", ".join(map(repr, unknown))
            raise LabkitError(f"Recipe {self.name!r} has no hyperparameter {names}.{hint} "
                              f"Known: {', '.join(known)}.")


INPUT_RANKS = {"image": 3, "sequence": 2, "points": 1}


def recipe(name: str, *, summary: str, topic: int | tuple[int, ...], detail: str = "",
           inputs: str = "any", phases: Callable | None = None,
           train_defaults: dict | None = None, loss: Callable | None = None) -> Callable:
    """Register a build function under ``name``.

    Args:
        name: snake_case recipe name, unique.
        summary: one line for ``labkit recipes``.
        topic: the lecture topic number(s) the recipe mirrors, as in the course outline.
        detail: what of those topics it shows, e.g. ``"residual nets"``.
        inputs: the inputs it builds for: ``"any"``, ``"image"`` or ``"sequence"``.
        phases: ``phases(hparams, epochs) -> [Phase, ...]`` for recipes that train in several
            phases (see :mod:`labkit.phases`).
        train_defaults: training options used when the user sets none, e.g.
            ``{"learning_rate": 0.03, "batch_size": 10}``.
        loss: ``loss(hparams, task) -> keras loss or None`` for recipes whose model, for some
            hyperparameters, trains with its own loss (the playground's exact mode); None, or
            a None result: the task's loss (:mod:`labkit.tasks`).
    """
    if not _NAME.match(name):
        raise ValueError(f"Recipe names are snake_case. Received: name={name!r}")
    topics = lecture.topics(topic)

    def register(build: Callable) -> Callable:
        if name in _REGISTRY and _REGISTRY[name].build is not build:
            raise ValueError(f"A recipe named {name!r} is already registered.")
        _REGISTRY[name] = Recipe(name, summary, topics, build, detail, inputs,
                                 phases, dict(train_defaults or {}), loss)
        return build

    return register


ENTRY_POINTS = "labkit.recipes"  # the entry-point group recipe packages declare themselves in
EXTRA = "LABKIT_RECIPES"  # environment: more recipe modules or packages, comma-separated


def recipe_modules() -> list[str]:
    """The recipe modules and packages to import: the ``labkit.recipes`` entry points' and
    ``$LABKIT_RECIPES``'s, each once."""
    from importlib.metadata import entry_points

    declared = [point.value for point in entry_points(group=ENTRY_POINTS)]
    extra = [name.strip() for name in os.environ.get(EXTRA, "").split(",") if name.strip()]
    return list(dict.fromkeys(declared + extra))


@functools.cache
def _load_all() -> None:
    """Import every recipe module once (a package: each of its modules not starting with
    ``_``), so that their recipes register."""
    for name in recipe_modules():
        try:
            module = importlib.import_module(name)
        except ImportError as err:
            raise LabkitError(f"Recipe package {name!r} (from the {ENTRY_POINTS} entry points "
                              f"or ${EXTRA}) cannot be imported: {err}") from None
        for found in pkgutil.iter_modules(getattr(module, "__path__", [])):
            if not found.name.startswith("_"):
                importlib.import_module(f"{name}.{found.name}")


def list_recipes(pattern: str = "*") -> list[str]:
    """Sorted names of the registered recipes, filtered by an fnmatch ``pattern``."""
    _load_all()
    return sorted(n for n in _REGISTRY if fnmatch.fnmatch(n, pattern))


def get_recipe(name: str) -> Recipe:
    """The registered recipe called ``name``; an unknown name suggests close matches."""
    _load_all()
    if name not in _REGISTRY:
        raise UnknownRecipeError(f"Unknown recipe {name!r}.{did_you_mean(name, _REGISTRY)} "
                                 "See `labkit recipes` for the list.")
    return _REGISTRY[name]


def build(name: str, **kwargs: Any):
    """Build the recipe ``name`` (an uncompiled ``keras.Model``) with ``input_shape``,
    ``num_classes`` and hyperparameters as keyword arguments."""
    return get_recipe(name).build(**kwargs)


def build_checked(name: str, input_shape: tuple, num_classes: int, hparams: dict[str, Any],
                  task: str = "classification"):
    """:func:`build` for a command: a hyperparameter the recipe rejects (its ``ValueError`` or
    ``TypeError``) becomes a :class:`LabkitError`, one ``Error:`` line."""
    try:
        return build(name, input_shape=input_shape, num_classes=num_classes, task=task, **hparams)
    except (ValueError, TypeError) as err:
        raise LabkitError(str(err)) from None
