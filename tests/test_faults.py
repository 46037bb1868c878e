"""Faults of the machine, not the user: a full disk, a read-only or misplaced folder, damaged
run files. Each ends in one Error: line, leaves every file whole and no temporary file, records
what happened, and --resume then finishes the run."""

import errno
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from helpers import error_line

import labkit
from labkit import checkpoint, files, runs
from labkit.errors import LabkitError

TRAIN = ["train", "mlp", "--dataset", "digits", "--set", "units=[16]", "--epochs", "4"]


def temporary_files(folder: Path) -> list[str]:
    return [p.name for p in folder.rglob(".*")]


def last_line(result) -> str:
    """The Error: line a failed command ended with (training prints its epochs before it)."""
    assert "Traceback" not in result.output, result.output
    return result.output.strip().splitlines()[-1]


def fail_on(monkeypatch, prefix: str, call: int, code: int = errno.ENOSPC):
    """Make the ``call``-th flush of a temporary file named ``prefix…`` fail with ``code``."""
    real, seen = files.fsync, {"n": 0}

    def fsync(path):
        if Path(path).name.startswith(prefix):
            seen["n"] += 1
            if seen["n"] == call:
                raise OSError(code, os.strerror(code))
        return real(path)

    monkeypatch.setattr(files, "fsync", fsync)


def test_a_full_disk_mid_run_stops_cleanly_and_resume_finishes(cli, tmp_path, monkeypatch):
    fail_on(monkeypatch, ".last.", 3)  # the third checkpoint: epoch 3's last.keras
    result = cli(*TRAIN, "--runs-dir", tmp_path, "--name", "full")
    run = tmp_path / "full"
    assert result.exit_code == 1
    checkpoints = sorted(p.name for p in run.glob("*.keras"))
    assert last_line(result).startswith("Error: No space left on the device holding ")
    assert last_line(result).endswith(
        f"Free some space, or choose a folder on another disk (--runs-dir, --out). Training "
        f"stopped; {run} keeps 2 finished epochs and every file in it is whole. Once that is "
        f"fixed, continue with: labkit train --resume {run}")
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["status"] == "interrupted" and metrics["epochs_completed"] == 2
    assert metrics["reason"].startswith("No space left on the device holding")
    assert checkpoint.read(run / "last.keras").state["epoch"] == 2 and checkpoints
    assert temporary_files(run) == []
    monkeypatch.undo()
    result = cli("train", "--resume", run)
    assert result.exit_code == 0, result.output
    assert list(labkit.load_run(run).history["epoch"]) == [1, 2, 3, 4]
    assert labkit.load_run(run).metrics["status"] == "completed"


@pytest.mark.slow  # two runs
def test_a_full_disk_while_saving_the_final_model_resumes_to_completion(cli, tmp_path,
                                                                          monkeypatch):
    fail_on(monkeypatch, ".model.", 1)
    result = cli(*TRAIN, "--runs-dir", tmp_path, "--name", "final")
    assert result.exit_code == 1 and "keeps 4 finished epochs" in last_line(result)
    assert not (tmp_path / "final" / "model.keras").exists()
    assert temporary_files(tmp_path / "final") == []
    monkeypatch.undo()
    assert cli("train", "--resume", tmp_path / "final").exit_code == 0
    assert (tmp_path / "final" / "model.keras").exists()
    assert list(labkit.load_run(tmp_path / "final").history["epoch"]) == [1, 2, 3, 4]


def test_folders_that_cannot_hold_a_run(cli, tmp_path, monkeypatch):
    (tmp_path / "afile").write_text("not a folder")
    result = cli(*TRAIN, "--runs-dir", tmp_path / "afile" / "runs")
    assert error_line(result) == (f"Error: A part of the path {tmp_path / 'afile' / 'runs'} is a "
                                  "file, not a folder. Choose another folder (--runs-dir, --out).")
    long_name = "n" * 300
    result = cli(*TRAIN, "--runs-dir", tmp_path / "runs", "--name", long_name)
    assert error_line(result).startswith("Error: The name ") and "is too long" in \
        error_line(result)
    monkeypatch.setattr(shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(1, 1, 1000))
    result = cli(*TRAIN, "--runs-dir", tmp_path / "small")
    assert error_line(result).startswith(f"Error: Not enough room on the device holding "
                                         f"{tmp_path / 'small'}: 0.0 MB free, and two "
                                         "checkpoints of this model need about")
    assert list((tmp_path / "small").iterdir()) == []


def test_a_read_only_folder_is_named(cli, tmp_path, monkeypatch):
    original = os.replace

    def read_only(src, dst):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(os, "replace", read_only)
    result = cli(*TRAIN, "--runs-dir", tmp_path)
    monkeypatch.setattr(os, "replace", original)
    assert result.exit_code == 1
    assert "is on a read-only filesystem. Choose a folder you can write to" in last_line(result)
    assert list(tmp_path.iterdir()) == []  # the half-made run folder was removed


@pytest.fixture(scope="module")
def finished_once(tmp_path_factory) -> Path:
    run = labkit.train("mlp", dataset="digits", epochs=3, units=[8],
                       runs_dir=str(tmp_path_factory.mktemp("finished")), name="done",
                       echo=lambda _: None)
    return run.path


@pytest.fixture
def finished(finished_once, tmp_path):
    """A finished 3-epoch run of its own for each test, copied from one trained once (a run
    folder moves: nothing in it names its own path)."""
    return labkit.load_run(shutil.copytree(finished_once, tmp_path / "done"))


def test_resume_falls_back_to_best_keras_when_last_keras_is_damaged(cli, finished):
    path = finished.path
    metrics = json.loads((path / "metrics.json").read_text())
    metrics["status"] = "interrupted"
    (path / "metrics.json").write_text(json.dumps(metrics))
    best_epoch = checkpoint.read(path / "best.keras").state["epoch"]
    (path / "last.keras").write_bytes((path / "last.keras").read_bytes()[:500])
    result = cli("train", "--resume", path)
    assert result.exit_code == 0, result.output
    assert f"Resuming from best.keras instead, after epoch {best_epoch}" in result.output
    assert list(labkit.load_run(path).history["epoch"]) == [1, 2, 3]
    (path / "last.keras").write_bytes(b"garbage")
    (path / "best.keras").unlink()
    metrics = json.loads((path / "metrics.json").read_text())
    metrics["status"] = "interrupted"
    (path / "metrics.json").write_text(json.dumps(metrics))
    result = cli("train", "--resume", path)
    assert last_line(result).startswith(f"Error: {path / 'last.keras'} is damaged")
    assert "There is no best.keras to fall back on" in last_line(result)


@pytest.mark.parametrize("name, content, command, message", [
    ("model.keras", b"PK\x03\x04 cut short", "evaluate", "is damaged or not a Keras model file"),
    ("config.json", b'{"recipe": "ml', "evaluate", "config.json is damaged (not valid JSON"),
    ("metrics.json", b"\x00\x01garbage", "resume", "metrics.json is damaged (not valid JSON"),
    ("history.csv", b"", "compare", "history.csv is damaged"),
    ("history.csv", b"\xff\xfe\x00 garbage", "compare", "history.csv is damaged"),
    ("history.csv", b"loss\n0.5\n", "compare", "history.csv is damaged: it has no epoch"),
])
def test_damaged_run_files_are_named(cli, finished, name, content, command, message):
    (finished.path / name).write_bytes(content)
    args = {"evaluate": ["evaluate", finished.path], "resume": ["train", "--resume",
                                                                 finished.path],
            "compare": ["compare", finished.path]}[command]
    result = cli(*args)
    assert result.exit_code == 1
    assert last_line(result).startswith(f"Error: {finished.path / name}") and \
        message in last_line(result), last_line(result)
    listed = cli("runs", "--runs-dir", finished.path.parent)
    assert listed.exit_code == 0
    if name in ("config.json", "metrics.json", "history.csv"):
        assert "damaged" in listed.output


def test_a_failed_export_leaves_no_partial_folder(cli, finished, monkeypatch):
    fail_on(monkeypatch, ".labkit.", 1)
    result = cli("export", finished.path, "--format", "keras")
    assert result.exit_code == 1
    assert error_line(result).startswith(
        f"Error: No space left on the device holding {finished.path / 'export' / 'keras'}")
    assert not (finished.path / "export").exists() or \
        list((finished.path / "export").iterdir()) == []


@pytest.mark.slow  # a mounted filesystem, two runs
def test_a_real_full_filesystem(tmp_path, cli):
    """A 200 KB tmpfs: the run starts (room for two checkpoints), fills the disk, stops with the
    run whole; after the filesystem grows, --resume finishes it."""
    mount = tmp_path / "small"
    mount.mkdir()
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=200k", "tmpfs", str(mount)],
                          capture_output=True)
    if made.returncode != 0:
        pytest.skip(f"cannot mount a small filesystem here: {made.stderr.decode().strip()}")
    try:
        result = cli(*TRAIN, "--runs-dir", mount, "--name", "r", "--epochs", "5")
        assert result.exit_code == 1
        assert last_line(result).startswith("Error: No space left on the device holding "
                                            f"{mount / 'r'}")
        assert temporary_files(mount) == []
        metrics = json.loads((mount / "r" / "metrics.json").read_text())
        assert metrics["status"] == "interrupted"
        subprocess.run(["mount", "-o", "remount,size=4m", str(mount)], check=True)
        assert cli("train", "--resume", mount / "r").exit_code == 0
        assert list(labkit.load_run(mount / "r").history["epoch"]) == [1, 2, 3, 4, 5]
    finally:
        subprocess.run(["umount", str(mount)], capture_output=True)


def test_describe_puts_each_cause_in_words():
    assert files.describe(OSError(errno.EACCES, "Permission denied"), "runs/x") == (
        "Permission denied for runs/x. Choose a folder you can write to (--runs-dir, --out), or "
        "fix its permissions.")
    assert files.describe(OSError(errno.EDQUOT, "Disk quota exceeded"), "runs").startswith(
        "The disk quota is used up on the device holding runs.")
    assert isinstance(files.FileFault("x", OSError(errno.ENOSPC, "full")), LabkitError)
    assert runs  # run directories are read through labkit.runs in the tests above


def test_a_full_disk_stops_a_sweep_for_resume(cli, tmp_path, monkeypatch):
    fail_on(monkeypatch, ".last.", 2)  # trial-001's second epoch
    result = cli("sweep", "mlp", "--dataset", "digits", "--epochs", "2", "--set", "units=[16]",
                 "--grid", "learning_rate=[0.01,0.001]", "--runs-dir", tmp_path, "--name", "s")
    assert result.exit_code == 1
    assert last_line(result).endswith(f"The sweep stopped at trial-001; once that is fixed, "
                                      f"continue it with: labkit sweep --resume {tmp_path / 's'}")
    state = json.loads((tmp_path / "s" / "sweep.json").read_text())
    assert [t["status"] for t in state["trials"]] == ["interrupted", "pending"]
    monkeypatch.undo()
    assert cli("sweep", "--resume", tmp_path / "s").exit_code == 0
    state = json.loads((tmp_path / "s" / "sweep.json").read_text())
    assert [t["status"] for t in state["trials"]] == ["completed", "completed"]


def test_predict_output_and_lab_folders_that_cannot_be_written(cli, finished, tmp_path):
    (tmp_path / "afile").write_text("not a folder")
    samples = finished.path / "samples.npz"
    result = cli("predict", finished.path, samples, "--output", tmp_path / "afile" / "p.csv")
    assert last_line(result) == (f"Error: A part of the path {tmp_path / 'afile' / 'p.csv'} is "
                                 "a file, not a folder. Choose another folder (--runs-dir, --out).")
    result = cli("lab", "run", "momentum", "--quick", "--out", tmp_path / "afile" / "lab")
    assert result.exit_code == 1
    assert last_line(result).startswith(f"Error: A part of the path {tmp_path / 'afile'}")
