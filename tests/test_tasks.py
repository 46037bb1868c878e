"""Tasks (labkit.tasks, the recipes' shared head): classification, binary, multi-label and
regression heads, losses and metrics, and a run of each end to end on .npz data."""

import json

import keras
import numpy as np
import pytest
from helpers import error_line

import labkit
from labkit import runs, tasks
from labkit.data import npz


@pytest.fixture(scope="module")
def npz_files(tmp_path_factory):
    """A binary image set (keras.datasets layout), a regression and a multi-label table."""
    folder = tmp_path_factory.mktemp("npz")
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(200, 8, 8), dtype=np.uint8)
    bright_top = (images[:, :4].mean(axis=(1, 2)) > images[:, 4:].mean(axis=(1, 2)))
    np.savez(folder / "binary.npz", x_train=images[:160], y_train=bright_top[:160].astype("int64"),
             x_test=images[160:], y_test=bright_top[160:].astype("int64"))
    x = rng.normal(size=(400, 4)).astype("float32")
    np.savez(folder / "regression.npz", x=x, y=(x @ [1.0, -2.0, 0.5, 3.0]).astype("float32"))
    labels = np.stack([x[:, 0] > 0, x[:, 1] > 0, x[:, 2] + x[:, 3] > 0], axis=1)
    np.savez(folder / "multilabel.npz", x=x, y=labels.astype("int64"))
    return folder


@pytest.mark.parametrize(("task", "num_classes", "units", "activation"), [
    ("classification", 10, 10, "softmax"), ("binary", 2, 1, "sigmoid"), ("binary", 1, 1, "sigmoid"),
    ("multilabel", 5, 5, "sigmoid"), ("regression", 1, 1, "linear"), ("regression", 3, 3, "linear"),
])
def test_every_recipe_head_follows_the_task(task, num_classes, units, activation):
    for recipe, shape in (("mlp", (4,)), ("cnn", (8, 8, 1)), ("cnn1d", (60, 1))):
        model = labkit.build(recipe, input_shape=shape, num_classes=num_classes, task=task)
        head = model.get_layer("predictions")
        assert head.units == units and head.get_config()["activation"] == activation, recipe


@pytest.mark.parametrize(("task", "num_classes", "message"), [
    ("binary", 3, "A binary head is one sigmoid unit for two classes. Received: num_classes=3"),
    ("classification", 1, "`num_classes` must be an integer >= 2 for task='classification'. "
                          "Received: num_classes=1"),
    ("ordinal", 3, "`task` must be one of classification, binary, multilabel, regression. "
                   "Received: task='ordinal'"),
])
def test_a_head_that_does_not_fit_its_task_is_refused(task, num_classes, message):
    with pytest.raises(ValueError) as info:
        labkit.build("mlp", input_shape=(4,), num_classes=num_classes, task=task)
    assert str(info.value) == message


def test_losses_metrics_and_monitors_per_task():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1, activation="sigmoid")])
    tasks.compile_for(model, "sgd", "binary")
    assert model.loss == "binary_crossentropy"
    assert tasks.monitors("regression") == ("val_loss", "val_mae", "loss", "mae")
    assert tasks.higher_is_better("val_auc") and not tasks.higher_is_better("val_mae")


@pytest.mark.parametrize(("y", "task", "classes"), [
    (np.array([0, 1, 1, 0]), "binary", 2), (np.array([0, 2, 1]), "classification", 3),
    (np.array([0.5, 1.5]), "regression", 1), (np.zeros((3, 2), "float32"), "regression", 2),
    (np.array([[0, 1, 1], [1, 0, 0]]), "multilabel", 3),
])
def test_the_task_follows_the_labels(y, task, classes):
    assert npz.infer_task(y) == (task, classes)


def test_binary_images_from_npz_end_to_end(npz_files, tmp_path, cli):
    result = cli("train", "cnn", "--dataset", npz_files / "binary.npz", "--epochs", "2",
                 "--set", "filters=[8]", "--runs-dir", tmp_path, "--name", "b")
    assert result.exit_code == 0, result.output
    run = labkit.load_run(tmp_path / "b")
    assert run.config["task"] == "binary"
    assert {"auc", "val_auc", "accuracy", "val_accuracy"} <= set(run.history.columns)
    assert runs.unwrap(run.model).get_layer("predictions").units == 1
    report = labkit.evaluate(run)
    assert report["task"] == "binary" and np.sum(report["confusion_matrix"]) == 40
    assert report["test_accuracy"] == pytest.approx(run.metrics["test_accuracy"])
    assert 0 <= report["auc"] <= 1


def test_regression_from_npz_reports_errors_and_plots(npz_files, tmp_path, cli):
    result = cli("train", "mlp", "--dataset", npz_files / "regression.npz", "--epochs", "30",
                 "--set", "units=[16]", "--learning-rate", "0.01", "--monitor", "val_mae",
                 "--runs-dir", tmp_path, "--name", "r")
    assert result.exit_code == 0, result.output
    assert "test_mae" in result.output
    run = labkit.load_run(tmp_path / "r")
    assert run.config["task"] == "regression" and "val_mae" in run.history
    result = cli("evaluate", run.path)
    assert result.exit_code == 0, result.output
    saved = json.loads(run.file("evaluation.json").read_text())
    assert saved["mae"] == pytest.approx(run.metrics["test_mae"], rel=1e-4)
    assert saved["r2"] > 0.5  # a linear target, learnt
    assert run.file("predicted_vs_true.png").stat().st_size > 5_000


def test_multilabel_from_npz_reports_auc_per_label(npz_files, tmp_path):
    run = labkit.train("mlp", dataset=str(npz_files / "multilabel.npz"), epochs=5, units=[16],
                       runs_dir=str(tmp_path), name="m", echo=lambda _: None)
    assert run.model.get_layer("predictions").units == 3
    report = labkit.evaluate(run)
    assert list(report["per_label"]) == ["0", "1", "2"]
    assert all(0 <= scores["auc"] <= 1 for scores in report["per_label"].values())


def test_task_override_on_two_classes(tmp_path):
    run = labkit.train("playground", dataset="circle", task="binary", epochs=2,
                       runs_dir=str(tmp_path), name="p", echo=lambda _: None)
    assert runs.unwrap(run.model).get_layer("predictions").units == 1
    assert run.file("decision_boundary.png").exists()


@pytest.mark.parametrize(("args", "line"), [
    (["--task", "binary"], "Error: --task binary does not fit dataset 'digits', a classification "
                           "task with 10 classes."),
    (["--dataset", "{regression}", "--task", "binary"], "Error: --task binary does not fit "
     "dataset '{regression}', a regression task with 1 target(s)."),
    (["--dataset", "{regression}", "--monitor", "val_accuracy"], "Error: --monitor val_accuracy "
     "is not measured in a regression run; choose one of val_loss, val_mae, loss, mae."),
    (["--dataset", "{regression}", "--class-weight", "balanced"], "Error: --class-weight applies "
     "to classification and binary tasks, not regression."),
])
def test_bad_task_options(cli, npz_files, tmp_path, args, line):
    regression = str(npz_files / "regression.npz")
    args = [a.replace("{regression}", regression) for a in args]
    result = cli("train", "mlp", "--runs-dir", tmp_path / "runs", *args)
    assert result.exit_code == 1
    assert error_line(result) == line.replace("{regression}", regression)
    assert not (tmp_path / "runs").exists()


def test_a_tfds_binary_set_trains_and_evaluates_end_to_end(tmp_path, cli):
    tfds = pytest.importorskip("tensorflow_datasets")
    with tfds.testing.mock_data(num_examples=24):
        result = cli("train", "cnn", "--dataset", "tfds:patch_camelyon", "--data-dir", tmp_path,
                     "--epochs", "1", "--set", "filters=[4]", "--batch-size", "8",
                     "--runs-dir", tmp_path / "runs", "--name", "t")
        assert result.exit_code == 0, result.output
        run = labkit.load_run(tmp_path / "runs" / "t")
        assert run.config["task"] == "binary" and "val_auc" in run.history
        report = labkit.evaluate(run)
    assert report["task"] == "binary" and report["num_examples"] > 0
