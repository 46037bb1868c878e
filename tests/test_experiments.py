"""Experiments: labkit compare, the runs table (sort, filter, formats), labkit sweep (grid,
random, resume after SIGKILL, divergence, bad input)."""

import json
import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest
from helpers import error_line
from PIL import Image

import labkit
from labkit import sweeps
from labkit.errors import LabkitError

QUIET = {"echo": lambda _: None}


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("runs")
    made = [labkit.train("mlp", dataset="digits", epochs=2, units=[16], learning_rate=rate,
                         runs_dir=str(folder), name=f"lr-{rate}", **QUIET)
            for rate in (0.01, 0.001)]
    return folder, made


def test_compare_shows_only_the_option_that_differs(two_runs, cli, tmp_path):
    folder, made = two_runs
    frame = labkit.compare([made[0].path, made[1].path])
    assert list(frame.index) == ["lr-0.01", "lr-0.001"]
    options = list(frame.columns[:list(frame.columns).index("best_val_accuracy")])
    assert options == ["learning_rate"]
    assert list(frame["learning_rate"]) == ["0.01", "0.001"]
    assert frame.loc["lr-0.01", "best_val_accuracy"] == made[0].history["val_accuracy"].max()
    assert frame.loc["lr-0.001", "epochs"] == 2 and frame.attrs["notes"] == []
    assert "dropout" in labkit.compare(made, all_options=True).columns
    result = cli("compare", str(folder / "lr-*"), "--metric", "loss", "--out", tmp_path)
    assert result.exit_code == 0, result.output
    header = result.output.splitlines()[0].split()
    assert header[:3] == ["run", "learning_rate", "best_val_loss"]
    picture = tmp_path / "compare.png"
    assert Image.open(picture).size[0] > 400
    result = cli("compare", str(folder / "lr-*"))  # by default beside the runs, not in the cwd
    assert result.output.splitlines()[-1] == f"Curves: {folder / 'compare.png'}"
    assert (folder / "compare.png").is_file()
    # one legend entry per run: the figure's lines come from one loop per run
    assert error_line(cli("compare", str(folder / "nothing-*"))) == \
        f"Error: No runs match {str(folder / 'nothing-*')!r}."
    assert "Did you mean: loss?" in error_line(cli("compare", str(folder / "lr-*"),
                                                   "--metric", "los"))


def test_a_one_epoch_run_is_drawn_as_points_not_an_empty_axis():
    import pandas as pd

    from labkit import plots

    one = pd.DataFrame({"epoch": [1], "accuracy": [0.4], "val_accuracy": [0.5]})
    fig = plots.compare_figure([("one epoch", one)], "accuracy")
    lines = fig.axes[0].get_lines()
    assert [(line.get_marker(), list(line.get_ydata())) for line in lines] == [
        ("o", [0.5]), ("o", [0.4])]


@pytest.mark.parametrize(("values", "log"), [([1e-3, 1e-2, 1e-1], True), ([16, 32, 64], True),
                                             ([0.0, 0.25, 0.5], False), ([16, 64], False),
                                             ([1, 2, 3], False)])
def test_log_spaced_sweep_values_get_a_log_axis(values, log, tmp_path, monkeypatch):
    from labkit import plots

    assert plots.log_spaced(values) is log
    results = pd.DataFrame({"learning_rate": values, "best_val_loss": [0.5] * len(values)})
    drawn = {}
    monkeypatch.setattr(plots, "save", lambda fig, path: drawn.setdefault("fig", fig))
    plots.sweep_points(results, {"learning_rate": "auto"}, "best_val_loss", tmp_path / "s")
    assert drawn["fig"].axes[0].get_xscale() == ("log" if log else "linear")


def test_a_regression_runs_curves_show_the_mae_beside_the_loss():
    from labkit import plots

    history = pd.DataFrame({"epoch": [1, 2], "lr": [1e-3, 1e-3], "seconds": [1.0, 1.0],
                            "loss": [0.9, 0.5], "mae": [50.0, 40.0], "val_loss": [0.8, 0.6],
                            "val_mae": [48.0, 45.0]})
    fig = plots.curves_figure(history)
    titles = [ax.get_title() for ax in fig.axes]
    assert titles == ["loss (squared error in target std's)", "mean absolute error"]



def test_compare_notes_runs_of_different_datasets(two_runs, tmp_path):
    _, made = two_runs
    other = labkit.train("mlp", dataset="xor", epochs=1, runs_dir=str(tmp_path), **QUIET)
    frame = labkit.compare([made[0], other])
    assert frame.attrs["notes"] and "dataset (digits, xor)" in frame.attrs["notes"][0]


def test_runs_sorts_filters_and_writes_csv_and_json(two_runs, cli):
    folder, made = two_runs
    result = cli("runs", "--runs-dir", folder, "--sort", "val_accuracy", "--format", "csv")
    assert result.exit_code == 0, result.output
    from io import StringIO

    frame = pd.read_csv(StringIO(result.output))
    assert list(frame["best_val_accuracy"]) == sorted(frame["best_val_accuracy"], reverse=True)
    assert {"seconds", "epochs", "option.learning_rate"} <= set(frame.columns)
    result = cli("runs", "--runs-dir", folder, "--where", "learning_rate=0.001",
                 "--format", "json")
    rows = json.loads(result.output)
    assert [r["name"] for r in rows] == ["lr-0.001"]
    result = cli("runs", "--runs-dir", folder, "--last", "1")
    assert result.output.splitlines()[1].startswith("lr-0.001")
    assert "time" in result.output.splitlines()[0]
    for printed in ("best_val_acc", "time"):  # the printed headers sort too
        result = cli("runs", "--runs-dir", folder, "--sort", printed)
        assert result.exit_code == 0 and printed in result.output.splitlines()[0]
    assert "Did you mean: recipe" in error_line(cli("runs", "--runs-dir", folder, "--where",
                                                     "recipes=cnn"))
    assert error_line(cli("runs", "--runs-dir", folder, "--where", "recipe")).startswith(
        "Error: --where takes key=value")


def test_a_damaged_run_is_listed_as_damaged(two_runs, cli, tmp_path):
    import shutil

    folder, made = two_runs
    copy = tmp_path / "runs"
    shutil.copytree(folder, copy)
    (copy / "lr-0.01" / "metrics.json").write_text("{trunc")
    result = cli("runs", "--runs-dir", copy)
    assert result.exit_code == 0, result.output
    line = next(li for li in result.output.splitlines() if li.startswith("lr-0.01"))
    assert "damaged" in line


def test_a_grid_sweep_runs_every_combination_as_run_directories(cli, tmp_path):
    result = cli("sweep", "mlp", "--dataset", "digits", "--epochs", "1", "--grid",
                 "learning_rate=[0.01,0.001]", "--grid", "units=[[8],[16]]",
                 "--runs-dir", tmp_path, "--name", "grid")
    assert result.exit_code == 0, result.output
    folder = tmp_path / "grid"
    state = json.loads((folder / "sweep.json").read_text())
    assert [t["values"] for t in state["trials"]] == [
        {"learning_rate": 0.01, "units": [8]}, {"learning_rate": 0.01, "units": [16]},
        {"learning_rate": 0.001, "units": [8]}, {"learning_rate": 0.001, "units": [16]}]
    assert {t["status"] for t in state["trials"]} == {"completed"}
    results = pd.read_csv(folder / "results.csv")
    assert list(results["best_val_loss"]) == sorted(results["best_val_loss"])
    assert len(results) == 4 and (folder / "sweep.png").stat().st_size > 5_000
    run = labkit.load_run(folder / "trial-003")
    assert run.config["learning_rate"] == 0.001 and run.config["hparams"]["units"] == [8]
    listed = cli("runs", "--runs-dir", tmp_path, "--format", "json")
    assert [r["name"] for r in json.loads(listed.output)] == [f"grid/trial-00{i}" for i in
                                                              range(1, 5)]
    again = cli("sweep", "mlp", "--grid", "units=[[8]]", "--runs-dir", tmp_path, "--name", "grid")
    assert error_line(again) == f"Error: {folder} exists; continue it with --resume {folder}, " \
                                "or pick another --name."


def test_a_random_sweep_is_reproducible_from_its_seed():
    space = sweeps.space_from(ranges={"learning_rate": "loguniform(1e-4,1e-1)",
                                      "dropout": "uniform(0,0.6)", "epochs": "int(1,3)"},
                              choices={"optimizer": ["sgd", "adam"]}, random=6)
    first, again, other = sweeps.plan(space, 7), sweeps.plan(space, 7), sweeps.plan(space, 8)
    assert first == again and first != other and len(first) == 6
    assert all(1e-4 <= t["learning_rate"] <= 1e-1 and 0 <= t["dropout"] <= 0.6 and
               t["epochs"] in (1, 2, 3) and t["optimizer"] in ("sgd", "adam") for t in first)


def test_a_sweep_from_a_yaml_config_and_in_python(tmp_path):
    config = tmp_path / "sweep.yaml"
    config.write_text("recipe: mlp\ndataset: digits\nepochs: 1\nhparams: {units: [8]}\n"
                      "sweep:\n  random: 2\n  choice: {optimizer: [sgd, adam]}\n")
    frame = labkit.sweep(config=str(config), runs_dir=str(tmp_path), name="yaml", **QUIET)
    assert len(frame) == 2 and set(frame["status"]) == {"completed"}
    assert frame.attrs["sweep"] == tmp_path / "yaml"


def test_a_diverging_trial_is_recorded_and_the_sweep_goes_on(tmp_path):
    frame = labkit.sweep("mlp", dataset="digits", epochs=2, optimizer="sgd", units=[8],
                         grid={"learning_rate": [1e30, 0.01]}, runs_dir=str(tmp_path),
                         name="boom", **QUIET)
    status = dict(zip(frame["learning_rate"], frame["status"], strict=True))
    assert status == {1e30: "diverged", 0.01: "completed"}
    assert frame["trial"].iloc[0] == "trial-002"  # the diverged trial has no best value: last


@pytest.mark.parametrize("args, message", [
    (["--grid", "dropot=[0,0.5]"], "Cannot sweep 'dropot': it is neither a training option "
                                   "nor a hyperparameter of mlp. Did you mean: dropout?"),
    (["--grid", "dropout=[]"], "--grid dropout: expected a non-empty list"),
    (["--random", "2", "--range", "dropout=uniform(0.5,0.1)"],
     "--range dropout: the low end must be below the high end."),
    (["--random", "2", "--range", "learning_rate=loguniform(0,1)"],
     "--range learning_rate: loguniform needs positive ends."),
    (["--random", "2", "--range", "dropout=normal(0,1)"],
     "--range dropout: expected uniform(LOW,HIGH), loguniform(LOW,HIGH) or int(LOW,HIGH)."),
    (["--range", "dropout=uniform(0,1)"], "--range and --choice are sampled: add --random N"),
    ([], "Nothing to sweep"),
    (["--grid", "epochs=[1,0]"], "--epochs must be an integer >= 1. Received: 0"),
    (["--grid", "units=[[8]]", "--max-time", "soon"], "--max-time takes a duration"),
    (["--grid", "units=[[8]]", "--name", "../x"], "--name must be a plain folder name"),
])
def test_bad_sweeps_are_refused_before_anything_trains(cli, tmp_path, args, message):
    result = cli("sweep", "mlp", "--dataset", "digits", "--runs-dir", tmp_path, *args)
    assert result.exit_code != 0
    assert message in error_line(result)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow  # a subprocess killed mid-trial, then three trials of 6 epochs
def test_a_sweep_killed_mid_trial_resumes_without_duplicates(tmp_path):
    """SIGKILL while trial 2 trains; --resume keeps trial 1, continues trial 2 from its last
    finished epoch and runs trial 3; each trial's history has each epoch once."""
    command = [sys.executable, "-c", "from labkit.cli import main; main()", "sweep", "mlp",
               "--dataset", "digits", "--epochs", "6", "--set", "units=[64,64]",
               "--grid", "learning_rate=[0.01,0.003,0.001]", "--runs-dir", str(tmp_path),
               "--name", "killed"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    history = tmp_path / "killed" / "trial-002" / "history.csv"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if history.exists() and len(history.read_text().splitlines()) >= 3:
            break
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    state = json.loads((tmp_path / "killed" / "sweep.json").read_text())
    assert [t["status"] for t in state["trials"]] == ["completed", "running", "pending"]
    frame = labkit.sweep(resume=str(tmp_path / "killed"), **QUIET)
    assert sorted(frame["trial"]) == ["trial-001", "trial-002", "trial-003"]
    assert set(frame["status"]) == {"completed"}
    for trial in ("trial-001", "trial-002", "trial-003"):
        epochs = labkit.load_run(tmp_path / "killed" / trial).history["epoch"]
        assert list(epochs) == [1, 2, 3, 4, 5, 6]
    assert sorted(p.name for p in (tmp_path / "killed").iterdir()) == [
        "results.csv", "sweep.json", "sweep.png", "trial-001", "trial-002", "trial-003"]
    with pytest.raises(LabkitError, match="not a sweep folder"):
        labkit.sweep(resume=str(tmp_path), **QUIET)


def test_max_time_stops_starting_trials_and_resume_runs_the_rest(cli, tmp_path):
    messages = []
    frame = labkit.sweep("mlp", dataset="digits", epochs=1, units=[8], runs_dir=str(tmp_path),
                         name="timed", grid={"learning_rate": [0.01, 0.001]}, max_time=1e-9,
                         echo=messages.append)
    assert set(frame["status"]) == {"pending"} and not (tmp_path / "timed" / "results.csv").exists()
    assert any("--max-time reached: 2 trials not run" in m for m in messages)
    result = cli("sweep", "--resume", tmp_path / "timed", "--set", "units=[4]", "--epochs", "3")
    assert error_line(result) == ("Error: --resume continues a sweep with its saved space and "
                                  "options; drop --epochs, --set.")
    frame = labkit.sweep(resume=str(tmp_path / "timed"), **QUIET)
    assert set(frame["status"]) == {"completed"} and (tmp_path / "timed" / "results.csv").exists()
