"""``labkit evaluate``: a run's test-split metrics and the report its task calls for.

- classification and binary: confusion matrix and per-class precision, recall and F1 (binary:
  threshold 0.5, and the ROC AUC);
- multilabel: accuracy and ROC AUC per label;
- regression: mean squared and absolute error and R² per target, and a predicted-vs-true plot.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from labkit import files, layout, plots, runs, tasks
from labkit.data import pipeline
from labkit.errors import LabkitError

TOP = 9  # examples top_losses.png shows
THRESHOLD = 0.5  # a sigmoid output at or above it counts as the positive class / label


def report(task: str, y_true: np.ndarray, outputs: np.ndarray, class_names=()) -> dict:
    """What ``task``'s evaluation shows, from the true labels and the model's outputs."""
    if task == "classification":
        return _classes(y_true, outputs.argmax(axis=1), outputs.shape[1], class_names)
    if task == "binary":
        from sklearn.metrics import roc_auc_score

        scores = outputs[:, 0]
        result = _classes(y_true, (scores >= THRESHOLD).astype("int64"), 2, class_names)
        result["auc"] = float(roc_auc_score(y_true, scores)) if len(np.unique(y_true)) == 2 \
            else None
        return result
    if task == "multilabel":
        from sklearn.metrics import roc_auc_score

        names = list(class_names) or [str(i) for i in range(y_true.shape[1])]
        per_label = {}
        for i, name in enumerate(names):
            truth, scores = y_true[:, i], outputs[:, i]
            auc = float(roc_auc_score(truth, scores)) if len(np.unique(truth)) == 2 else None
            per_label[name] = {"accuracy": float(((scores >= THRESHOLD) == truth).mean()),
                               "auc": auc}
        return {"num_examples": int(len(y_true)), "labels": names, "per_label": per_label}
    from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

    truth = y_true.reshape(len(y_true), -1)
    return {"num_examples": int(len(y_true)),
            "mse": float(mean_squared_error(truth, outputs)),
            "mae": float(mean_absolute_error(truth, outputs)),
            "r2": float(r2_score(truth, outputs))}


def _classes(y_true, y_pred, num_classes: int, class_names) -> dict:
    """Confusion matrix and the per-class report (precision, recall, F1)."""
    from sklearn.metrics import classification_report, confusion_matrix

    labels = list(range(num_classes))
    names = list(class_names) or [str(i) for i in labels]
    return {
        "num_examples": int(len(y_true)),
        "class_names": names,
        "confusion_matrix": confusion_matrix(y_true, y_pred, labels=labels).tolist(),
        "per_class": classification_report(y_true, y_pred, labels=labels, target_names=names,
                                           output_dict=True, zero_division=0),
        "report_text": classification_report(y_true, y_pred, labels=labels, target_names=names,
                                             zero_division=0, digits=3),
    }


def headline(task: str, y_true: np.ndarray, outputs: np.ndarray) -> tuple[str, float]:
    """One number to compare models of ``task`` by: accuracy, or the mean absolute error."""
    if task == "classification":
        return "accuracy", float((outputs.argmax(axis=1) == y_true).mean())
    if task in ("binary", "multilabel"):
        predicted = (outputs >= THRESHOLD).reshape(y_true.shape)
        return "accuracy", float((predicted == y_true).mean())
    return "mae", float(np.abs(outputs - y_true.reshape(outputs.shape)).mean())


def evaluate(run_path, data_dir: str | None = None) -> dict:
    """Evaluate a run on its test split and save evaluation.json (and the confusion matrix and
    classification report, or the predicted-vs-true plot) in the run directory. Returns the
    report.

    ``test_loss`` and the other ``test_*`` metrics are the compiled model's, computed as training
    computes them (:func:`labkit.tasks.evaluate_split`); the loss includes the weight penalties,
    like history.csv's ``val_loss``.
    """
    run = runs.open_run(run_path)
    loaded = run.load_data(data_dir)
    if loaded.test is None:
        raise LabkitError(f"Dataset {loaded.spec.name!r} has no test split.")
    task = loaded.spec.task
    model = runs.load_model(run)
    prep = loaded.spec.preprocessing
    x, y = pipeline.arrays(loaded.test, prep=None if run.raw_inputs else prep)
    result = {"task": task, **tasks.evaluate_split(model, (x, y))}
    outputs = model.predict(x, verbose=0)
    result.update(report(task, y, outputs, loaded.spec.class_names))
    inner = runs.unwrap(model)
    members = [layer for layer in inner.layers if layer.name.startswith("member_")]
    if members:  # an ensemble: each member's score beside the ensemble's
        x_in = prep.numpy(x) if inner is not model else x
        scores = {m.name: headline(task, y, m.predict(x_in, verbose=0)) for m in members}
        result["members_metric"] = headline(task, y, outputs)[0]
        result["members"] = {name: value for name, (_, value) in scores.items()}
    if task == "regression":
        plots.predicted_vs_true(y, outputs, run.file(layout.SCATTER))
    if "confusion_matrix" in result:
        plots.confusion(result["confusion_matrix"], result["class_names"],
                        run.file(layout.CONFUSION_PNG))
        if x.ndim == 4:  # images: the ones the model gets most wrong
            draw_top_losses(task, x, y, outputs, result["class_names"], run.file(layout.TOP_LOSSES))
    save(run, result)
    return result


def draw_top_losses(task: str, x, y, outputs, class_names, path) -> None:
    """top_losses.png: the :data:`TOP` test examples with the highest cross-entropy."""
    probabilities = np.concatenate([1 - outputs, outputs], axis=1) if task == "binary" \
        else outputs
    truth = probabilities[np.arange(len(y)), y]
    worst = np.argsort(truth)[:TOP]  # lowest probability of the true class: highest loss
    predicted = probabilities.argmax(axis=1)
    titles = [f"true {class_names[y[i]]}, predicted {class_names[predicted[i]]}\n"
              f"p(true)={truth[i]:.2f}, loss {-np.log(max(truth[i], 1e-12)):.2f}" for i in worst]
    plots.top_losses(x[worst], titles, path)


def save(run: runs.Run, result: dict) -> None:
    if "confusion_matrix" in result:
        names = result["class_names"]
        matrix = pd.DataFrame(result["confusion_matrix"], index=names, columns=names)
        matrix.index.name = "true \\ predicted"
        files.write_text(run.file(layout.CONFUSION), matrix.to_csv())
        files.write_text(run.file(layout.REPORT), result["report_text"])
    files.write_json(run.file(layout.EVALUATION),
                     {k: v for k, v in result.items() if k != "report_text"})


def render(result: dict, run_path) -> str:
    """The report of :func:`evaluate` as ``labkit evaluate`` prints it."""
    from pathlib import Path

    tested = sorted((k for k in result if k.startswith("test_")), key=lambda k: k == "test_loss")
    lines = [f"{key:<14} {result[key]:.4f}" for key in tested]
    exact = result.get("auc")
    if "test_auc" in result and exact is not None:  # one AUC, its two computations explained
        lines[tested.index("test_auc")] += (f"  (Keras's AUC metric, 200 thresholds, as in "
                                            f"history.csv; exact ROC AUC {exact:.4f})")
    lines += [f"{'examples':<14} {result['num_examples']}", ""]
    if "members" in result:
        metric = f"test_{result['members_metric']}"
        lines += [f"{name:<14} {metric} {value:.4f}" for name, value in result["members"].items()]
        lines += [f"{'ensemble':<14} {metric} {result[metric]:.4f}", ""]
    if "confusion_matrix" in result:
        names = result["class_names"]
        width = max(5, *(len(n) for n in names)) + 1
        lines += ["confusion matrix (rows: true, columns: predicted)",
                  " " * width + "".join(f"{n[:width - 1]:>{width}}" for n in names)]
        lines += [f"{name[:width - 1]:<{width}}" + "".join(f"{v:>{width}}" for v in row)
                  for name, row in zip(names, result["confusion_matrix"], strict=True)]
        lines += ["", result["report_text"]]
    if exact is not None and "test_auc" not in result:
        lines.append(f"ROC AUC {exact:.4f}")
    for label, scores in result.get("per_label", {}).items():
        auc = "-" if scores["auc"] is None else f"{scores['auc']:.4f}"
        lines.append(f"{label:<20} accuracy {scores['accuracy']:.4f}  AUC {auc}")
    if result["task"] == "regression":
        lines += [f"mse {result['mse']:.4g}  mae {result['mae']:.4g}  R² {result['r2']:.4f}",
                  f"plot: {Path(run_path) / layout.SCATTER}"]
    return "\n".join(lines).rstrip("\n")
