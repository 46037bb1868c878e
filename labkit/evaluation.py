"""``labkit evaluate``: test-split metrics, confusion matrix and per-class report of a run."""

from __future__ import annotations

import numpy as np
import pandas as pd

from labkit import data, runs
from labkit.config import TrainConfig
from labkit.errors import LabkitError

EVALUATION, CONFUSION, REPORT = (
    "evaluation.json", "confusion_matrix.csv", "classification_report.txt")


def load_model(run: runs.Run, name: str = runs.MODEL, compile: bool = True):
    """The run's trained ``model.keras`` (or checkpoint ``name``); missing or unreadable is a
    LabkitError."""
    import keras

    import recipes._layers  # noqa: F401  registers labkit's custom layers for loading

    path = run.file(name)
    if not path.is_file():
        status = run.metrics.get("status", "unfinished")
        raise LabkitError(f"{run.path} has no {name} (run status: {status}).")
    try:
        return keras.models.load_model(path, compile=compile)
    except Exception as err:  # Keras raises ValueError, OSError, zipfile errors…
        raise LabkitError(f"{path} is not a readable Keras model file: "
                          f"{str(err).splitlines()[0][:200]}") from None


def load_run_data(run: runs.Run, data_dir: str | None = None) -> data.Data:
    """The dataset a run was trained on, split exactly as during training."""
    config = TrainConfig.from_dict(run.config)
    return data.load(config.dataset, validation_split=config.validation_split,
                     data_dir=data_dir or config.data_dir, options=config.data_options)


def arrays(split, spec: data.DatasetSpec, batch_size: int = 256):
    """``(x, y)`` model-ready inputs and labels of a split (a stream is read once, in order)."""
    from labkit.training import split_inputs

    inputs = split_inputs(split, spec, batch_size)
    if isinstance(inputs, tuple):
        return inputs
    xs, ys = zip(*((x.numpy(), y.numpy()) for x, y in inputs), strict=True)
    return np.concatenate(xs), np.concatenate(ys)


def report(y_true: np.ndarray, probabilities: np.ndarray, class_names) -> dict:
    """Accuracy, loss, confusion matrix and the per-class report from predicted probabilities."""
    from sklearn.metrics import accuracy_score, classification_report, confusion_matrix, log_loss

    labels = list(range(probabilities.shape[1]))
    names = list(class_names) or [str(i) for i in labels]
    y_pred = probabilities.argmax(axis=1)
    return {
        "test_accuracy": float(accuracy_score(y_true, y_pred)),
        "test_loss": float(log_loss(y_true, probabilities, labels=labels)),
        "num_examples": int(len(y_true)),
        "class_names": names,
        "confusion_matrix": confusion_matrix(y_true, y_pred, labels=labels).tolist(),
        "per_class": classification_report(y_true, y_pred, labels=labels, target_names=names,
                                           output_dict=True, zero_division=0),
        "report_text": classification_report(y_true, y_pred, labels=labels, target_names=names,
                                             zero_division=0, digits=3),
    }


def evaluate(run_path, data_dir: str | None = None) -> dict:
    """Evaluate a run on its test split and save evaluation.json, confusion_matrix.csv and
    classification_report.txt in the run directory. Returns the report."""
    run = runs.open_run(run_path)
    loaded = load_run_data(run, data_dir)
    if loaded.test is None:
        raise LabkitError(f"Dataset {loaded.spec.name!r} has no test split.")
    model = load_model(run)
    x, y = arrays(loaded.test, loaded.spec)
    result = report(y, model.predict(x, verbose=0), loaded.spec.class_names)
    members = [layer for layer in model.layers if layer.name.startswith("member_")]
    if members:  # an ensemble: each member's accuracy beside the ensemble's
        result["members"] = {m.name: float((m.predict(x, verbose=0).argmax(1) == y).mean())
                             for m in members}
    save(run, result)
    return result


def save(run: runs.Run, result: dict) -> None:
    names = result["class_names"]
    matrix = pd.DataFrame(result["confusion_matrix"], index=names, columns=names)
    matrix.index.name = "true \\ predicted"
    runs.write_text(run.file(CONFUSION), matrix.to_csv())
    runs.write_text(run.file(REPORT), result["report_text"])
    runs.write_json(run.file(EVALUATION), {k: v for k, v in result.items() if k != "report_text"})
