"""Data-parallel training over several processes (labkit.processes, labkit.launch,
``--distribute data-parallel``): the process group from options, Keras's variables or Slurm's;
bad settings as one Error line; each process's share of a batch; and, in subprocesses on this
CPU (slow), 2 processes training one model as 1 process does, writing one run directory,
surviving a killed process through --resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from helpers import error_line

from labkit import launch, processes
from labkit.errors import LabkitError

SLURM = {"SLURM_NTASKS": "4", "SLURM_PROCID": "2", "SLURM_JOB_NODELIST": "gpu[03-05,9],cpu1"}


def test_the_group_comes_from_options_then_keras_variables_then_slurm():
    assert processes.resolve(environ={}) is None  # one process
    assert processes.resolve("10.0.0.1:1234", 2, 1, environ=SLURM) == processes.ProcessGroup(
        "10.0.0.1:1234", 2, 1, "options")
    keras_vars = {"KERAS_DISTRIBUTION_JOB_ADDRESSES": "10.0.0.1:99,10.0.0.2:98",
                  "KERAS_DISTRIBUTION_NUM_PROCESSES": "2",
                  "KERAS_DISTRIBUTION_PROCESS_ID": "1", **SLURM}
    assert processes.resolve(environ=keras_vars) == processes.ProcessGroup(
        "10.0.0.1:99", 2, 1, "Keras's variables")
    assert processes.resolve(environ=SLURM) == processes.ProcessGroup(
        f"gpu03:{processes.SLURM_PORT}", 4, 2, "Slurm")
    assert processes.resolve(environ={**SLURM, "LABKIT_COORDINATOR_PORT": "7000"}).coordinator \
        == "gpu03:7000"
    assert processes.resolve(environ={"SLURM_NTASKS": "1", "SLURM_PROCID": "0"}) is None
    group = processes.resolve(environ=SLURM)
    assert processes.resolve(environ=group.environment()).coordinator == group.coordinator


@pytest.mark.parametrize(("nodes", "first"), [("node01", "node01"), ("a[7-9]", "a7"),
                                               ("gpu[003,010-012],x", "gpu003"),
                                               ("h1,h2", "h1")])
def test_the_first_slurm_host(nodes, first):
    assert processes.first_host(nodes) == first


@pytest.mark.parametrize(("options", "message"), [
    (("127.0.0.1:5000", 2, 2), "--process-id must be in 0..1 for 2 processes. Received: 2"),
    (("127.0.0.1:5000", 1, 0), "--coordinator with --num-processes 1: a single process has no "
                               "group to coordinate; drop --coordinator, or start more "
                               "processes."),
    (("localhost", 2, 0), "--coordinator must be HOST:PORT, process 0's address, e.g. "
                          "10.0.0.1:12355. Received: 'localhost'"),
    ((None, 2, 0), "A process group needs --coordinator, --num-processes, --process-id "
                   "together; options give no --coordinator."),
    (("127.0.0.1:5000", 0, 0), "--num-processes must be at least 1. Received: 0"),
])
def test_bad_process_settings_are_named(options, message):
    with pytest.raises(LabkitError) as err:
        processes.resolve(*options, environ={})
    assert str(err.value) == message


def test_a_batch_that_does_not_split_over_the_devices_names_sizes_that_do():
    processes.check_divisible(64, 4)
    with pytest.raises(LabkitError, match=r"--batch-size 30 does not split over 4 devices: "
                                          r"data-parallel needs a multiple of 4, e.g. 28, 32\."):
        processes.check_divisible(30, 4)


def test_each_process_feeds_its_share_of_the_same_global_batches():
    pytest.importorskip("keras")
    from labkit.data.batches import ArrayBatches

    x, y = np.arange(22, dtype="float32")[:, None], np.arange(22)
    whole = ArrayBatches(x, y, 8, seed=3, shard=(0, 1, 2))
    parts = [ArrayBatches(x, y, 8, seed=3, shard=(rank, 2, 2)) for rank in (0, 1)]
    assert len(whole) == len(parts[0]) == 3
    for index in range(3):
        joined = np.concatenate([part[index][1] for part in parts])
        expected = whole[index][1]
        assert list(joined) == list(expected)
    assert len(whole[2][1]) == 6  # the last 6 examples: even, kept whole
    odd = ArrayBatches(x[:21], y[:21], 8, seed=3, shard=(1, 2, 2))
    assert len(odd[2][1]) == 2  # 5 left: 4 split over the 2 devices, one left out this epoch


def test_each_process_feeds_its_share_of_a_streamed_global_batch():
    tf = pytest.importorskip("tensorflow")
    from labkit.data import pipeline

    stream = tf.data.Dataset.from_tensor_slices((np.arange(21, dtype="float32")[:, None],
                                                 np.arange(21)))
    whole = [y.numpy().tolist() for _, y in pipeline.training_batches(
        stream, 8, seed=3, shard=(0, 1, 2))]
    parts = [[y.numpy().tolist() for _, y in pipeline.training_batches(
        stream, 8, seed=3, shard=(rank, 2, 2))] for rank in (0, 1)]
    assert [len(batch) for batch in whole] == [8, 8, 4]  # 5 left: 4 split over the devices
    assert [a + b for a, b in zip(*parts, strict=True)] == whole
    assert sum(whole, []) != sorted(sum(whole, []))  # shuffled, the same way everywhere


def test_a_bad_wait_setting_is_named(monkeypatch):
    from labkit import devices

    monkeypatch.setenv("LABKIT_JOIN_SECONDS", "soon")
    with pytest.raises(LabkitError, match=r"\$LABKIT_JOIN_SECONDS must be a whole number of "
                                          r"seconds >= 1. Received: 'soon'"):
        devices.seconds(devices.JOIN_SECONDS)
    monkeypatch.delenv("LABKIT_JOIN_SECONDS")
    assert devices.seconds(devices.JOIN_SECONDS) == 120


def test_process_options_need_data_parallel_and_launch_runs_train(cli):
    result = cli("train", "mlp", "--num-processes", "2")
    assert result.exit_code == 2 and "--coordinator, --num-processes and --process-id apply to " \
                                      "--distribute data-parallel." in result.output
    result = cli("launch", "--processes", "2", "--", "evaluate", "runs/x")
    assert result.exit_code == 1 and error_line(result) == (
        "Error: labkit launch starts `labkit train ...` processes, e.g. labkit launch "
        "--processes 2 -- train cnn --distribute data-parallel.")


def test_data_parallel_needs_the_jax_backend(cli, tmp_path, monkeypatch):
    import keras

    # whatever backend this test process loaded, the run sees another than JAX
    monkeypatch.setattr(keras.backend, "backend", lambda: "torch")
    result = cli("train", "mlp", "--dataset", "xor", "--distribute", "data-parallel",
                 "--runs-dir", tmp_path)
    assert error_line(result) == ("Error: --distribute data-parallel uses keras.distribution, "
                                  "which runs on the JAX backend: set KERAS_BACKEND=jax (it is "
                                  "torch).")
    assert not any(tmp_path.iterdir())


# ---- several processes on this CPU ----------------------------------------------------------

def _labkit(*args, env=None, timeout=300):
    """Run ``labkit ARGS`` in a fresh process on the JAX backend's CPU."""
    full = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu",
            "TF_CPP_MIN_LOG_LEVEL": "3", **(env or {})}
    return subprocess.run([sys.executable, "-m", "labkit", *map(str, args)], env=full,
                          capture_output=True, text=True, timeout=timeout)


def _weights(path: Path) -> list[np.ndarray]:
    import keras

    from labkit import runs

    model = keras.models.load_model(path, compile=False)
    return [np.asarray(w) for w in runs.unwrap(model).get_weights()]


@pytest.fixture(scope="module")
def even_npz(digits_npz):
    """400 digits with an even split everywhere (train 256, val 64, test 80)."""
    return digits_npz(400)


TRAIN = ("train", "mlp", "--set", "units=[16]", "--optimizer", "sgd", "--learning-rate", "0.5",
         "--no-shuffle", "--seed", "3")


@pytest.mark.slow  # three trainings in fresh processes, one of them two processes: ~50 s
def test_two_processes_train_as_one_full_batch(even_npz, tmp_path):
    """Full-batch training: 2 processes × 1 device, 1 process × 2 devices and one plain
    process end with the same weights; the run directory is written once, by process 0."""
    common = (*TRAIN, "--dataset", even_npz, "--epochs", "3", "--batch-size", "full",
              "--runs-dir", tmp_path / "runs")
    plain = _labkit(*common, "--name", "plain")
    assert plain.returncode == 0, plain.stderr[-2000:]
    local = _labkit(*common, "--name", "local", "--distribute", "data-parallel", "--devices", 2)
    assert local.returncode == 0, local.stderr[-2000:]
    copies = tmp_path / "copies"
    launched = subprocess.run(
        [sys.executable, "-m", "labkit", "launch", "--processes", "2", "--log-dir",
         tmp_path / "logs", "--", *map(str, common), "--name", "two", "--distribute",
         "data-parallel"], capture_output=True, text=True, timeout=300,
        env={**os.environ, "JAX_PLATFORMS": "cpu", "TF_CPP_MIN_LOG_LEVEL": "3",
             "LABKIT_PROCESS_COPIES": str(copies)})
    assert launched.returncode == 0, launched.stderr[-2000:]
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["local", "plain", "two"]
    reference = _weights(tmp_path / "runs" / "plain" / "model.keras")
    for other in (tmp_path / "runs" / "local" / "model.keras",
                  tmp_path / "runs" / "two" / "model.keras",
                  copies / "process-1" / "two" / "model.keras"):  # process 1's own copy
        for got, expected in zip(_weights(other), reference, strict=True):
            np.testing.assert_allclose(got, expected, atol=1e-5)
    config = json.loads((tmp_path / "runs" / "two" / "config.json").read_text())
    assert config["derived"]["processes"] == 2 and config["derived"]["replicas"] == 2
    assert config["derived"]["backend"] == "jax"
    assert "Process 1 of 2: completed (3 epochs)" in (tmp_path / "logs" /
                                                      "process-1.log").read_text()


STREAMED = """
import sys
import tensorflow_datasets as tfds
from labkit import cli
with tfds.testing.mock_data(num_examples=64):
    cli.main(sys.argv[1:], prog_name="labkit")
"""


@pytest.mark.slow  # a plain process and a pair, each reading a mock TFDS set: ~30 s
def test_two_processes_share_a_streamed_dataset(tmp_path):
    """A TFDS set streams through tf.data on the JAX backend; 2 processes (the two-terminal
    form: Keras's variables) end with the plain run's weights."""
    pytest.importorskip("tensorflow_datasets")
    common = [sys.executable, "-c", STREAMED, *TRAIN, "--dataset", "mnist", "--epochs", "2",
              "--batch-size", "full", "--runs-dir", tmp_path / "runs", "--data-dir",
              tmp_path / "tfds"]
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu",
           "TF_CPP_MIN_LOG_LEVEL": "3"}
    plain = subprocess.run([*map(str, common), "--name", "plain"], env=env, capture_output=True,
                           text=True, timeout=300)
    assert plain.returncode == 0, plain.stderr[-2000:]
    group = {"KERAS_DISTRIBUTION_JOB_ADDRESSES": f"127.0.0.1:{launch.free_port()}",
             "KERAS_DISTRIBUTION_NUM_PROCESSES": "2"}
    pair = [subprocess.Popen([*map(str, common), "--name", "two", "--distribute",
                              "data-parallel"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, env={**env, **group,
                                             "KERAS_DISTRIBUTION_PROCESS_ID": str(rank)})
            for rank in (0, 1)]
    for process in pair:
        _, err = process.communicate(timeout=300)
        assert process.returncode == 0, err[-2000:]
    reference = _weights(tmp_path / "runs" / "plain" / "model.keras")
    for got, expected in zip(_weights(tmp_path / "runs" / "two" / "model.keras"), reference,
                             strict=True):
        np.testing.assert_allclose(got, expected, atol=1e-5)
    config = json.loads((tmp_path / "runs" / "two" / "config.json").read_text())
    assert config["derived"]["processes"] == 2



def _rank_pid(rank: int, since: float) -> int | None:
    """The pid of a running `labkit train` process of a launched group with this rank."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes().split(b"\0")
            command = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if b"train" in command and f"KERAS_DISTRIBUTION_PROCESS_ID={rank}".encode() in environ \
                and f"LABKIT_TEST_STARTED={since}".encode() in environ:
            return int(entry.name)
    return None


@pytest.mark.slow  # a launched pair, one killed, then the resume: ~60 s
def test_a_killed_process_stops_the_group_and_resume_completes_each_epoch_once(even_npz,
                                                                              tmp_path):
    started = time.time()
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "TF_CPP_MIN_LOG_LEVEL": "3",
           "LABKIT_TEST_STARTED": str(started)}
    run = tmp_path / "runs" / "pair"
    launched = subprocess.Popen(
        [sys.executable, "-m", "labkit", "launch", "--processes", "2", "--", *TRAIN,
         "--dataset", str(even_npz), "--epochs", "400", "--batch-size", "64", "--runs-dir",
         str(tmp_path / "runs"), "--name", "pair", "--distribute", "data-parallel"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # let it finish a few epochs first
        history = run / "history.csv"
        # 6 epochs' rows: epoch 6's row is written after epoch 5's checkpoint, and an
        # interrupted run keeps exactly the epochs last.keras holds
        if history.exists() and len(history.read_text().splitlines()) > 6:
            break
        time.sleep(0.2)
    pid = _rank_pid(1, started)
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    _, err = launched.communicate(timeout=120)
    assert launched.returncode == 128 + signal.SIGKILL
    assert "labkit launch: process 1 failed (exit 137); the others were stopped." in err
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["status"] in ("interrupted", "running")  # process 0 may be stopped first
    done = metrics["epochs_completed"]
    assert 5 <= done < 400
    resumed = subprocess.run(
        [sys.executable, "-m", "labkit", "launch", "--processes", "2", "--", "train",
         "--resume", str(run)], env=env, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert f"Resuming {run} after epoch " in resumed.stdout
    import pandas as pd

    epochs = pd.read_csv(run / "history.csv")["epoch"].tolist()
    assert epochs == list(range(1, 401))
    assert json.loads((run / "metrics.json").read_text())["status"] == "completed"


@pytest.mark.slow  # waits for a coordinator that is not there: ~10 s
def test_an_unreachable_coordinator_is_one_error_line(tmp_path):
    from labkit.launch import free_port

    result = _labkit("train", "mlp", "--dataset", "xor", "--distribute", "data-parallel",
                     "--coordinator", f"127.0.0.1:{free_port()}", "--num-processes", 2,
                     "--process-id", 1, "--runs-dir", tmp_path, env={"LABKIT_JOIN_SECONDS": "5"},
                     timeout=120)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("Error: Could not join the process group at 127.0.0.1:")
    assert "Traceback" not in result.stderr and not any(tmp_path.iterdir())
