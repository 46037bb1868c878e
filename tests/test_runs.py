"""Run directories (labkit.runs, labkit.files): what a run holds, names, atomic writes, the lock
that keeps two processes off one run, and reading a run back."""

import errno
import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from helpers import error_line

from labkit import files, layout, runs
from labkit.callbacks import HistoryCsv
from labkit.errors import LabkitError


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
    assert not [p for p in path.iterdir() if p.name.startswith(".")]  # no temporary files, no lock


def test_an_existing_name_gets_a_numbered_suffix(tmp_path):
    names = [runs.create_run(tmp_path, "same").path.name for _ in range(3)]
    assert names == ["same", "same-2", "same-3"]


def test_run_reads_back_history_metrics_model_and_plots(digits_run):
    run = runs.open_run(digits_run.path)
    assert run.history["epoch"].tolist() == [1, 2, 3]
    assert run.metrics["status"] == "completed" and run.name == "digits-cnn"
    assert run.model.name == digits_run.model.name and run.model is run.model  # loaded once
    fig = run.plot()
    assert [ax.get_title() for ax in fig.axes] == ["loss", "accuracy"]


def test_plots_leave_pyplot_and_the_backend_alone(digits_run):
    code = ("import matplotlib; matplotlib.use('pdf'); import sys\n"
            "from labkit import runs\n"
            f"runs.open_run({str(digits_run.path)!r}).plot()\n"
            "print(matplotlib.get_backend(), 'matplotlib.pyplot' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["pdf", "False"]


def test_atomic_write_leaves_the_old_file_when_writing_fails(tmp_path):
    target = tmp_path / "metrics.json"
    files.write_json(target, {"status": "running"})
    with pytest.raises(RuntimeError), files.atomic_path(target) as tmp:
        tmp.write_text('{"status": "comp')
        raise RuntimeError("killed mid-write")
    assert json.loads(target.read_text()) == {"status": "running"}
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]


def test_a_batch_puts_its_files_in_place_in_order_or_none_of_them(tmp_path, monkeypatch):
    (tmp_path / "history.csv").write_text("old history")
    (tmp_path / "last.keras").write_bytes(b"old checkpoint")
    renamed, real = [], os.replace
    monkeypatch.setattr(os, "replace", lambda a, b: renamed.append(Path(b).name) or real(a, b))
    with files.Batch() as batch:
        batch.write(tmp_path / "history.csv", b"new history")
        batch.write(tmp_path / "best.keras", b"new checkpoint")
        batch.write(tmp_path / "last.keras", b"new checkpoint")
        assert (tmp_path / "history.csv").read_text() == "old history"  # nothing in place yet
    assert renamed == ["history.csv", "best.keras", "last.keras"]
    assert (tmp_path / "last.keras").read_bytes() == (tmp_path / "best.keras").read_bytes()
    assert (tmp_path / "history.csv").read_text() == "new history"

    def full(path):  # the disk fills while the checkpoint is flushed
        if ".last." in str(path):
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(files, "fsync", full)
    with pytest.raises(files.FileFault, match=r"No space left on the device holding .*last\.keras"):
        with files.Batch() as batch:
            batch.write(tmp_path / "history.csv", b"newer history")
            batch.write(tmp_path / "last.keras", b"newer checkpoint")
    assert (tmp_path / "history.csv").read_text() == "new history"  # neither file changed
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.keras", "history.csv",
                                                          "last.keras"]


@pytest.mark.parametrize("rows", [
    [],
    [{"epoch": 1, "lr": 1e-05, "seconds": 0.123, "loss": 0.1 + 0.2, "val_loss": float("nan")},
     {"epoch": 2, "lr": 0.001, "seconds": 12.0, "loss": float("inf"), "val_loss": 1e22}],
    [{"epoch": 1, "phase": "head, frozen", "lr": 0.1, "loss": -0.0},  # a new column later
     {"epoch": 2, "phase": 'say "fine"', "lr": 0.01, "loss": 5e-324, "val_loss": 1e16}],
])
def test_history_csv_is_what_pandas_writes_however_the_rows_grow(rows):
    history = HistoryCsv()
    for n in range(len(rows) + 1):  # epoch after epoch, as training writes it
        expected = pd.DataFrame(rows[:n], columns=None if n else ["epoch"]).to_csv(index=False)
        assert history(rows[:n]) == expected
    if rows:  # an interrupted run keeps fewer rows, then goes on with new ones
        kept = [*rows[:1], {**rows[-1], "epoch": 2, "loss": 0.5}]
        assert history(kept) == pd.DataFrame(kept).to_csv(index=False)


def test_lock_refuses_a_second_process_and_takes_over_a_stale_one(tmp_path):
    run = runs.create_run(tmp_path, "locked")
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        run.file(layout.LOCK).write_text(str(holder.pid))
        with pytest.raises(LabkitError) as info, runs.lock(run):
            pass
        assert str(info.value) == (f"{run.path} is being trained by process {holder.pid}; wait "
                                   f"for it to finish or stop it (kill {holder.pid}) first.")
    finally:
        holder.kill()
        holder.wait()
    with runs.lock(run):  # the holder is gone: its lock is stale
        assert run.file(layout.LOCK).read_text() == str(os.getpid())
    assert not run.file(layout.LOCK).exists()


def test_resume_of_a_run_being_trained_is_refused(cli, digits_run, tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        digits_run.file(layout.LOCK).write_text(str(holder.pid))
        result = cli("train", "--resume", digits_run.path)
        assert result.exit_code == 1
        assert error_line(result) == (
            f"Error: {digits_run.path} is being trained by process {holder.pid}; wait for it "
            f"to finish or stop it (kill {holder.pid}) first.")
    finally:
        holder.kill()
        holder.wait()
        digits_run.file(layout.LOCK).unlink()


def test_missing_or_broken_model_file(cli, tmp_path, digits_run):
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / layout.CONFIG).write_text(digits_run.file(layout.CONFIG).read_text())
    result = cli("evaluate", broken)
    assert result.exit_code == 1
    assert error_line(result) == f"Error: {broken} has no model.keras (run status: unfinished)."
    (broken / layout.MODEL).write_text("not a model")
    result = cli("export", broken)
    assert result.exit_code == 1
    assert error_line(result).startswith(
        f"Error: {broken / layout.MODEL} is damaged or not a Keras model file (File is not a zip "
        "file)")
    plain = tmp_path / "plain"
    plain.mkdir()
    result = cli("evaluate", plain)
    assert result.exit_code == 1
    assert error_line(result) == f"Error: '{plain}' is not a labkit run directory (no config.json)."


def test_runs_lists_one_row_per_run(cli, digits_run):
    result = cli("runs", "--runs-dir", digits_run.path.parent)
    lines = result.output.splitlines()
    assert lines[0].split() == ["name", "recipe", "dataset", "epochs", "best_val_acc", "time",
                                "status", "date"]
    row = next(line for line in lines if line.startswith("digits-cnn "))
    seconds = round(digits_run.history["seconds"].sum(), 1)
    assert row.split()[1:8] == ["cnn", "digits", "3",
                                f"{digits_run.metrics['best_val_accuracy']:.4f}",
                                f"{seconds:.0f}", "s", "completed"]


@pytest.mark.parametrize("optimizer", ["sgd", pytest.param("adam", marks=pytest.mark.slow)])
def test_model_files_load_with_plain_keras_without_labkit(tmp_path, optimizer):
    """The README's promise: model.keras, last.keras and best.keras load with
    keras.models.load_model in a Python that never imported labkit (no custom classes)."""
    from helpers import fit

    run = fit(tmp_path, optimizer=optimizer, epochs=1)
    script = ("import sys, keras\n"
              "for path in sys.argv[1:]:\n"
              "    model = keras.models.load_model(path)\n"
              "    print(type(model.optimizer).__module__.split('.')[0], path)\n"
              "assert 'labkit' not in sys.modules and 'recipes' not in sys.modules\n")
    paths = [str(run.file(name)) for name in (layout.MODEL, "last.keras", "best.keras")]
    done = subprocess.run([sys.executable, "-c", script, *paths], capture_output=True,
                          text=True, timeout=300, check=False, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.count("keras ") == 3


def test_config_json_records_its_format_and_older_runs_are_read_through_one_migration(
        digits_run, tmp_path):
    import shutil

    assert digits_run.config["format"] == layout.FORMAT
    old = tmp_path / "old"
    shutil.copytree(digits_run.path, old)
    config = json.loads((old / layout.CONFIG).read_text())
    for key in ("format", "model_inputs", "data_spec"):  # what a format-1 config.json lacks
        del config[key]
    (old / layout.CONFIG).write_text(json.dumps(config))
    run = runs.open_run(old)
    assert run.config["format"] == layout.FORMAT and not run.raw_inputs
    assert run.config["data_spec"] is None
    assert json.loads((old / layout.CONFIG).read_text()) == config  # read, never rewritten
    assert run.spec == digits_run.spec  # read from the dataset, as training recorded it


def test_a_run_from_a_newer_labkit_is_refused_by_name(cli, digits_run, tmp_path):
    import shutil

    newer = tmp_path / "newer"
    shutil.copytree(digits_run.path, newer)
    config = json.loads((newer / layout.CONFIG).read_text())
    (newer / layout.CONFIG).write_text(json.dumps({**config, "format": layout.FORMAT + 1}))
    result = cli("evaluate", newer)
    assert result.exit_code == 1
    assert error_line(result) == (
        f"Error: {newer / layout.CONFIG} was written by a newer labkit (run format "
        f"{layout.FORMAT + 1}; this one reads up to {layout.FORMAT}). Upgrade labkit to open it.")
