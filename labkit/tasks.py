"""What a dataset's task means: the loss and metrics a model is compiled with, and how a trained
model is scored on a split.

Training and the labs compile through :func:`compile_for`, so both use the same loss and the
same metric names (the columns of history.csv); training's test metrics and ``labkit evaluate``
both come from :func:`evaluate_split`, so ``test_loss`` means what ``val_loss`` means.
"""

from __future__ import annotations

from dataclasses import dataclass

from labkit.data import pipeline
from labkit.errors import LabkitError


@dataclass(frozen=True)
class Task:
    loss: str
    metrics: tuple[str, ...]


TASKS = {
    # softmax probabilities over classes, integer labels
    "classification": Task("sparse_categorical_crossentropy", ("accuracy",)),
}


def get(task: str) -> Task:
    if task not in TASKS:
        raise LabkitError(f"Unknown task {task!r}. Known: {', '.join(TASKS)}.")
    return TASKS[task]


def compile_for(model, optimizer, task: str = "classification"):
    """Compile ``model`` with ``optimizer`` and ``task``'s loss and metrics; returns the model."""
    spec = get(task)
    model.compile(optimizer=optimizer, loss=spec.loss, metrics=list(spec.metrics))
    return model


def evaluate_split(model, split, *, scale: float = 1.0, batch_size: int = 256,
                   prefix: str = "test") -> dict[str, float]:
    """The compiled model's loss and metrics on ``split``, keys prefixed: ``test_loss``,
    ``test_accuracy``. The loss is Keras's, as in history.csv's ``val_loss``: the task's loss plus
    the weight penalties (``l1``/``l2``) of the model."""
    fed = pipeline.inputs(split, batch_size, scale=scale)
    args = fed if isinstance(fed, tuple) else (fed,)
    results = model.evaluate(*args, batch_size=batch_size, verbose=0, return_dict=True)
    return {f"{prefix}_{k}": float(v) for k, v in results.items()}
