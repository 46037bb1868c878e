import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from labkit import __version__, runs


def test_version(cli):
    result = cli("--version")
    assert result.exit_code == 0 and __version__ in result.output


@pytest.mark.parametrize("args", [["--help"], ["recipes"], ["data"], ["lab", "list"],
                                  ["describe", "cnn", "--set", "filters=[8,16]"]])
def test_listing_commands_do_not_import_tensorflow(args):
    code = (
        "import sys; from click.testing import CliRunner; from labkit.cli import main\n"
        f"r = CliRunner().invoke(main, {args!r})\n"
        "assert r.exit_code == 0, r.output\n"
        "print('TF' if 'tensorflow' in sys.modules else 'no TF')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().endswith("no TF")


def test_every_command_help_has_an_example(cli):
    for command in ("recipes", "data", "describe", "train", "evaluate", "export", "runs",
                    "lab", "lab list", "lab run"):
        result = cli(*command.split(), "--help")
        assert result.exit_code == 0 and "Example:" in result.output, command


def test_recipes_lists_name_summary_topic(cli):
    result = cli("recipes")
    assert result.exit_code == 0
    assert "cnn" in result.output and "lecture: 19 Convolutional layer" in result.output


def test_describe_shows_defaults_current_values_and_parameter_count(cli):
    result = cli("describe", "cnn", "--set", "filters=[8,16]", "--dataset", "digits")
    assert result.exit_code == 0, result.output
    assert "filters              (32, 64)               [8, 16]   (set)" in result.output
    assert "block2_conv" in result.output
    # 8*9+8, 16*(9*8)+16, (2*2*16)*10+10 parameters
    assert f"Parameters: {80 + 1168 + 650:,}" in result.output


@pytest.mark.parametrize(("args", "message"), [
    (["train", "cnnn"], "Error: Unknown recipe 'cnnn'. Did you mean: cnn, cnn1d?"),
    (["train", "cnn", "--dataset", "mnistt"],
     "Error: Unknown dataset 'mnistt'. Did you mean: mnist"),
    (["train", "cnn", "--set", "dropout"], "Error: --set takes key=value"),
    (["train", "cnn", "--set", "dropuot=0.1"],
     "Error: Recipe 'cnn' has no hyperparameter 'dropuot'"),
    (["train", "cnn", "--epochs", "-1"], "Error: --epochs must be an integer >= 1. Received: -1"),
    (["train", "cnn", "--set", "dropout=1.5"],
     "Error: `dropout` must be in [0, 1). Received: dropout=1.5"),
    (["train", "cnn", "--set", "filters=0"],
     "Error: `filters` must hold positive integers. Received: filters=[0]"),
    (["train", "cnn", "--dataset", "spiral"], "Error: Recipe 'cnn' takes image inputs"),
    (["train", "cnn", "--validation-split", "1.5"], "Error: --validation-split must be in [0, 1)"),
    (["train", "cnn", "--learning-rate", "0"], "Error: --learning-rate must be a number > 0"),
    (["train"], "Error: Name a RECIPE"),
    (["describe", "cnn", "--set", "padding=valid"], "Error: The input (8x8) is too small"),
    (["evaluate", "no/such/run"], "Error: Run directory 'no/such/run' does not exist"),
    (["export", "no/such/run"], "Error: Run directory 'no/such/run' does not exist"),
    (["runs", "--runs-dir", "no/such/dir"], "Error: Runs directory 'no/such/dir' does not exist"),
])
def test_errors_are_one_line_without_traceback(cli, tmp_path, args, message):
    result = cli(*args, "--runs-dir", tmp_path) if args[0] == "train" else cli(*args)
    assert result.exit_code == 1, result.output
    assert result.output.startswith(message), result.output
    assert result.output.count("\n") == 1 and "Traceback" not in result.output
    assert not list(tmp_path.iterdir())  # nothing written before the error


def test_bad_choice_is_a_usage_error(cli):
    result = cli("train", "cnn", "--optimizer", "adamw")
    assert result.exit_code == 2 and "Invalid value for '--optimizer'" in result.output


def test_missing_or_broken_model_file(cli, tmp_path, digits_run):
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / runs.CONFIG).write_text(digits_run.file(runs.CONFIG).read_text())
    result = cli("evaluate", broken)
    assert result.exit_code == 1 and result.output.startswith(f"Error: {broken} has no model.keras")
    (broken / runs.MODEL).write_text("not a model")
    result = cli("export", broken)
    assert result.exit_code == 1
    assert result.output.startswith(f"Error: {broken / runs.MODEL} is not a readable Keras model")
    plain = tmp_path / "plain"
    plain.mkdir()
    result = cli("evaluate", plain)
    assert result.output == f"Error: '{plain}' is not a labkit run directory (no config.json).\n"


def test_run_directory_contents(digits_run):
    path = digits_run.path
    assert {p.name for p in path.iterdir()} >= {"config.json", "history.csv", "metrics.json",
                                                "model.keras", "curves.png"}
    history = pd.read_csv(path / "history.csv")
    assert list(history["epoch"]) == [1, 2, 3]
    assert {"loss", "accuracy", "val_loss", "val_accuracy"} <= set(history.columns)
    metrics = json.loads((path / "metrics.json").read_text())
    assert metrics["status"] == "completed" and metrics["epochs_completed"] == 3
    assert metrics["best_val_accuracy"] == history["val_accuracy"].max()
    assert metrics["best_epoch"] == int(history["val_accuracy"].idxmax()) + 1
    assert 0 <= metrics["test_accuracy"] <= 1 and "test_loss" in metrics
    config = json.loads((path / "config.json").read_text())
    assert config["hparams"]["filters"] == [8, 16] and config["hparams"]["dropout"] == 0.5
    assert config["learning_rate"] == 0.001 and config["seed"] == 42
    assert {"labkit", "keras", "tensorflow"} <= set(config["versions"])
    assert not [p for p in path.iterdir() if p.name.startswith(".")]  # no temporary files left


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


@pytest.mark.parametrize("fmt", ["keras", "savedmodel"])
def test_export_reloads_and_checks_predictions(cli, digits_run, tmp_path, fmt):
    output = tmp_path / ("m.keras" if fmt == "keras" else "saved")
    result = cli("export", digits_run.path, "--format", fmt, "--output", output)
    assert result.exit_code == 0, result.output
    assert f"Exported {fmt} → {output} (checked on 64 examples" in result.output
    assert output.exists()


def test_export_mismatch_fails_and_removes_the_export(digits_run, tmp_path, monkeypatch):
    from labkit import export
    from labkit.errors import LabkitError

    monkeypatch.setattr(export, "_reload_keras", lambda path: lambda x: np.full((len(x), 10), 0.1))
    output = tmp_path / "bad.keras"
    with pytest.raises(LabkitError, match="disagrees with the trained model"):
        export.export(digits_run.path, "keras", str(output))
    assert not output.exists()


def test_runs_lists_one_row_per_run(cli, digits_run):
    result = cli("runs", "--runs-dir", digits_run.path.parent)
    lines = result.output.splitlines()
    assert lines[0].split() == ["name", "recipe", "dataset", "epochs", "best_val_acc", "status",
                                "date"]
    row = next(line for line in lines if line.startswith("digits-cnn "))
    assert row.split()[1:6] == ["cnn", "digits", "3",
                                f"{digits_run.metrics['best_val_accuracy']:.4f}", "completed"]


def test_train_end_to_end_and_rerun_from_config(cli, tmp_path):
    result = cli("train", "mlp", "--dataset", "xor", "--epochs", "2", "--set", "units=[8]",
                 "--runs-dir", tmp_path, "--name", "first", "--learning-rate", "0.01",
                 "--data-option", "noise=0.1")
    assert result.exit_code == 0, result.output
    assert f"Run directory: {tmp_path / 'first'}" in result.output
    assert "best_val_accuracy" in result.output and "test_accuracy" in result.output
    first = json.loads((tmp_path / "first" / "config.json").read_text())
    result = cli("train", "--config", tmp_path / "first" / "config.json", "--name", "second",
                 "--epochs", "3")
    assert result.exit_code == 0, result.output
    second = json.loads((tmp_path / "second" / "config.json").read_text())
    assert second["epochs"] == 3 and second["hparams"] == first["hparams"]
    assert second["data_options"] == {"noise": 0.1} and second["learning_rate"] == 0.01
    assert len(pd.read_csv(tmp_path / "second" / "history.csv")) == 3


def test_same_name_twice_gets_a_suffix(cli, tmp_path):
    for _ in range(2):
        result = cli("train", "mlp", "--dataset", "gauss", "--epochs", "1", "--runs-dir",
                     tmp_path, "--name", "same")
        assert result.exit_code == 0, result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["same", "same-2"]
