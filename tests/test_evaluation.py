"""``labkit evaluate`` (labkit.evaluation): test metrics as training computes them, confusion
matrix and per-class report, saved in the run."""

import json

import pandas as pd
import pytest

from labkit import layout


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


def test_a_run_from_before_models_took_raw_inputs_still_evaluates(digits_run, tmp_path):
    """Runs made before model.keras started with the preprocessing: no `model_inputs` in
    config.json, a model that takes scaled inputs. They load and evaluate as before."""
    import shutil

    import keras

    from labkit import evaluation, runs

    old = tmp_path / "old"
    shutil.copytree(digits_run.path, old)
    config = json.loads((old / layout.CONFIG).read_text())
    del config["format"], config["model_inputs"], config["data_spec"]  # a format-1 run
    (old / layout.CONFIG).write_text(json.dumps(config))
    wrapped = keras.models.load_model(old / layout.MODEL)
    bare = runs.unwrap(wrapped)
    bare.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    bare.optimizer.build(bare.trainable_variables)
    bare.save(old / layout.MODEL)
    report = evaluation.evaluate(old)
    assert report["test_accuracy"] == pytest.approx(digits_run.metrics["test_accuracy"],
                                                    abs=1e-6)
