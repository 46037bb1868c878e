"""``labkit evaluate`` (labkit.evaluation): test metrics as training computes them, confusion
matrix and per-class report, saved in the run."""

import json

import pandas as pd
import pytest


def test_evaluate_prints_and_saves_confusion_matrix(cli, digits_run):
    result = cli("evaluate", digits_run.path)
    assert result.exit_code == 0, result.output
    report = json.loads(digits_run.file("evaluation.json").read_text())
    matrix = pd.read_csv(digits_run.file("confusion_matrix.csv"), index_col=0)
    assert matrix.values.sum() == report["num_examples"] == 360
    accuracy = matrix.values.trace() / matrix.values.sum()
    assert report["test_accuracy"] == pytest.approx(accuracy)
    assert f"test_accuracy  {accuracy:.4f}" in result.output
    assert "precision" in digits_run.file("classification_report.txt").read_text()
    # the training-time test metric agrees with the evaluation
    assert digits_run.metrics["test_accuracy"] == pytest.approx(accuracy, abs=1e-6)


def test_test_loss_is_the_compiled_loss_as_in_val_loss(digits_run):
    """One definition: evaluation's test_loss is Keras's compiled loss on the test split, the
    same number training wrote to metrics.json."""
    from labkit import evaluation

    report = evaluation.evaluate(digits_run.path)
    assert report["test_loss"] == pytest.approx(digits_run.metrics["test_loss"], rel=1e-5)
