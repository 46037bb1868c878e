"""Training phases: most recipes train in one phase; some (transfer learning, ensembles) in several.

A recipe that needs more than one passes ``phases=`` to ``@recipe``: a function of its resolved
hyperparameters and the run's epochs that returns a list of :class:`Phase`. Each phase picks the
model to fit (the whole model, or one ensemble member) and which layers train.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from labkit.errors import LabkitError

EPOCH_CAP = "LABKIT_MAX_EPOCHS"  # cuts every phase short: how the tests run the docs' examples


@dataclass(frozen=True)
class Phase:
    """One stretch of training.

    Attributes:
        name: shown in history.csv's ``phase`` column.
        epochs: how many epochs this phase trains.
        prepare: ``prepare(model) -> keras.Model`` sets ``trainable`` flags and returns the model
            to compile and fit (``model`` itself, or a part of it such as an ensemble member).
        learning_rate: this phase's learning rate; None keeps the run's.
        seed: reseed before this phase (ensemble members train from their own seeds).
        split: ``split(model) -> (features_model, head_model)`` when the phase trains only a head
            on a frozen base; then the base's features are computed once and the head trained on
            them, which gives the same result as end-to-end frozen training, much faster.
    """

    name: str
    epochs: int
    prepare: Callable[[Any], Any] = lambda model: model
    learning_rate: float | None = None
    seed: int | None = None
    split: Callable[[Any], tuple[Any, Any]] | None = None


def single(hparams: dict, epochs: int) -> list[Phase]:
    """The default plan: the whole model for all epochs."""
    return [Phase("train", epochs)]


def epoch_cap() -> int | None:
    """``$LABKIT_MAX_EPOCHS`` as a whole number >= 1, or None when it is not set."""
    text = os.environ.get(EPOCH_CAP, "").strip()
    if not text:
        return None
    if not text.isdigit() or int(text) < 1:
        raise LabkitError(f"{EPOCH_CAP} must be a whole number >= 1 (or unset). "
                          f"Received: {text!r}")
    return int(text)


def capped(plan: list[Phase], cap: int | None) -> list[Phase]:
    """``plan`` with every phase cut to at most ``cap`` epochs (None: as it is)."""
    if cap is None:
        return plan
    return [dataclasses.replace(phase, epochs=min(phase.epochs, cap)) for phase in plan]
