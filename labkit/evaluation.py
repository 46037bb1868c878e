"""``labkit evaluate``: test-split metrics, confusion matrix and per-class report of a run."""

from __future__ import annotations

import numpy as np
import pandas as pd

from labkit import files, runs, tasks
from labkit.config import TrainConfig
from labkit.data import pipeline
from labkit.errors import LabkitError

EVALUATION, CONFUSION, REPORT = (
    "evaluation.json", "confusion_matrix.csv", "classification_report.txt")


def report(y_true: np.ndarray, probabilities: np.ndarray, class_names) -> dict:
    """Confusion matrix and the per-class report (precision, recall, F1) from predicted
    probabilities."""
    from sklearn.metrics import classification_report, confusion_matrix

    labels = list(range(probabilities.shape[1]))
    names = list(class_names) or [str(i) for i in labels]
    y_pred = probabilities.argmax(axis=1)
    return {
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
    classification_report.txt in the run directory. Returns the report.

    ``test_loss`` and ``test_accuracy`` are the compiled model's, computed as training computes
    them (:func:`labkit.tasks.evaluate_split`); the loss includes the weight penalties, like
    history.csv's ``val_loss``.
    """
    run = runs.open_run(run_path)
    loaded = TrainConfig.from_dict(run.config).load_data(data_dir)
    if loaded.test is None:
        raise LabkitError(f"Dataset {loaded.spec.name!r} has no test split.")
    model = runs.load_model(run)
    x, y = pipeline.arrays(loaded.test, scale=loaded.spec.scale)
    result = tasks.evaluate_split(model, (x, y))
    result.update(report(y, model.predict(x, verbose=0), loaded.spec.class_names))
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
    files.write_text(run.file(CONFUSION), matrix.to_csv())
    files.write_text(run.file(REPORT), result["report_text"])
    files.write_json(run.file(EVALUATION), {k: v for k, v in result.items() if k != "report_text"})
