"""What a dataset's task means for training: the loss and metrics a model is compiled with, which
way each metric improves, and how a trained model is scored on a split. (The output layer each task
needs is the recipes' shared head, ``recipes._common.output_layer``.)

- ``classification``: one softmax unit per class, integer labels, sparse categorical
  cross-entropy, accuracy;
- ``binary``: one sigmoid unit (the R lab's cats vs dogs), labels 0/1, binary cross-entropy,
  accuracy and AUC;
- ``multilabel``: one sigmoid unit per label (CheXNet), 0/1 rows, binary cross-entropy, binary
  accuracy and AUC;
- ``regression``: one linear unit per target, mean squared error, mean absolute error.

Training and the labs compile through :func:`compile_for`, so both use the same loss and metric
names (the columns of history.csv); training's test metrics and ``labkit evaluate`` both come from
:func:`evaluate_split`, so ``test_loss`` means what ``val_loss`` means.
"""

from __future__ import annotations

from dataclasses import dataclass

from labkit.data import pipeline
from labkit.errors import LabkitError


@dataclass(frozen=True)
class Task:
    loss: str
    metrics: tuple[str, ...]  # history.csv's names; validation ones get a val_ prefix


TASKS = {
    "classification": Task("sparse_categorical_crossentropy", ("accuracy",)),
    "binary": Task("binary_crossentropy", ("accuracy", "auc")),
    "multilabel": Task("binary_crossentropy", ("accuracy", "auc")),
    "regression": Task("mse", ("mae",)),
}
LOWER_IS_BETTER = ("loss", "mae")


def get(task: str) -> Task:
    if task not in TASKS:
        raise LabkitError(f"--task must be one of {', '.join(TASKS)}. Received: {task!r}")
    return TASKS[task]


def monitors(task: str) -> tuple[str, ...]:
    """What ``--monitor`` may watch for ``task``: the loss and metrics, validation ones first."""
    names = ("loss", *get(task).metrics)
    return tuple(f"val_{n}" for n in names) + names


def higher_is_better(metric: str) -> bool:
    return not metric.removeprefix("val_").endswith(LOWER_IS_BETTER)


def metric_objects(task: str) -> list:
    """The Keras metrics of ``task``, named as :attr:`Task.metrics` names them."""
    import keras

    made = {
        ("classification", "accuracy"): lambda: "accuracy",
        ("binary", "accuracy"): lambda: keras.metrics.BinaryAccuracy(name="accuracy"),
        ("binary", "auc"): lambda: keras.metrics.AUC(name="auc"),
        ("multilabel", "accuracy"): lambda: keras.metrics.BinaryAccuracy(name="accuracy"),
        ("multilabel", "auc"): lambda: keras.metrics.AUC(name="auc", multi_label=True),
        ("regression", "mae"): lambda: keras.metrics.MeanAbsoluteError(name="mae"),
    }
    return [made[(task, name)]() for name in get(task).metrics]


def compile_for(model, optimizer, task: str = "classification", loss=None,
                steps_per_execution: int = 1, loss_weight: float | None = None):
    """Compile ``model`` with ``optimizer`` and ``task``'s loss and metrics; returns the model.
    ``loss`` replaces the task's (a recipe's own, e.g. the playground's exact mode); history.csv
    still calls it ``loss``. ``steps_per_execution``: training steps per compiled call;
    ``loss_weight``: a factor on the loss (a regression's 1 / target variance)."""
    model.compile(optimizer=optimizer, loss=loss or get(task).loss, metrics=metric_objects(task),
                  steps_per_execution=steps_per_execution,
                  loss_weights=[loss_weight] if loss_weight is not None else None)
    return model


def evaluate_split(model, split, *, prep=None, batch_size: int = 256,
                   prefix: str = "test") -> dict[str, float]:
    """The compiled model's loss and metrics on ``split``, keys prefixed: ``test_loss``,
    ``test_accuracy``. The loss is Keras's, as in history.csv's ``val_loss``: the task's loss plus
    the weight penalties (``l1``/``l2``) of the model."""
    from labkit.callback_list import EpochCallbacks

    fed = pipeline.inputs(split, batch_size, prep=prep, cache=False)
    args = fed if isinstance(fed, tuple) else (fed,)
    results = model.evaluate(*args, batch_size=batch_size, verbose=0, return_dict=True,
                             callbacks=EpochCallbacks(model=model))  # no per-step dispatch
    return {f"{prefix}_{k}": float(v) for k, v in results.items()}
