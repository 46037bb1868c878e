"""Sweeps on a Dask cluster (labkit.cluster, ``labkit sweep --cluster``): a grid on a local
2-worker cluster gives what a serial sweep gives, and a worker killed mid-trial still ends with
every trial completed and each epoch trained once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from helpers import error_line

pytest.importorskip("dask.distributed")

SWEEP = ("sweep", "mlp", "--dataset", "digits", "--set", "units=[16]", "--grid",
         "learning_rate=[0.1,0.01]", "--grid", "dropout=[0,0.5]")


def _sweep(*args, env=None, **popen):
    full = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **(env or {})}
    return subprocess.Popen([sys.executable, "-m", "labkit", *map(str, args)], env=full,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **popen)


def test_a_cluster_address_is_checked(cli, tmp_path):
    result = cli(*SWEEP, "--epochs", "1", "--runs-dir", tmp_path, "--cluster", "local:0")
    assert result.exit_code == 1
    assert error_line(result) == "Error: --cluster local:N needs N >= 1 workers. Received: " \
                                 "'local:0'"
    result = cli(*SWEEP, "--epochs", "1", "--runs-dir", tmp_path, "--cluster", "somewhere")
    assert error_line(result) == ("Error: --cluster takes a Dask scheduler's address "
                                  "(tcp://HOST:8786) or local:N. Received: 'somewhere'")
    assert not any(tmp_path.iterdir())  # checked before the sweep folder is made


@pytest.mark.slow  # a serial 2×2 grid and the same on a 2-worker local cluster: ~60 s
def test_a_grid_on_a_local_cluster_matches_the_serial_sweep(tmp_path):
    serial = _sweep(*SWEEP, "--epochs", 2, "--runs-dir", tmp_path, "--name", "serial")
    assert serial.wait(timeout=300) == 0, serial.stderr.read()[-2000:]
    spread = _sweep(*SWEEP, "--epochs", 2, "--runs-dir", tmp_path, "--name", "spread",
                    "--cluster", "local:2")
    out, err = spread.communicate(timeout=300)
    assert spread.returncode == 0, err[-2000:]
    assert "Cluster local:2: 2 worker(s)" in out
    first = pd.read_csv(tmp_path / "serial" / "results.csv")
    second = pd.read_csv(tmp_path / "spread" / "results.csv")
    assert list(first.columns) == list(second.columns) and len(second) == 4
    assert sorted(p.name for p in (tmp_path / "spread").iterdir()) == [
        "results.csv", "sweep.json", "sweep.png", "trial-001", "trial-002", "trial-003",
        "trial-004"]
    for trial in ("trial-001", "trial-002", "trial-003", "trial-004"):
        # the same seeded trainings in other processes, beside Dask's own threads: equal
        a = pd.read_csv(tmp_path / "serial" / trial / "history.csv").drop(columns="seconds")
        b = pd.read_csv(tmp_path / "spread" / trial / "history.csv").drop(columns="seconds")
        pd.testing.assert_frame_equal(a, b, check_exact=True)
        assert json.loads((tmp_path / "spread" / trial / "metrics.json").read_text())[
            "status"] == "completed"


def _workers(marker: str) -> list[int]:
    """The pids of the Dask worker processes (multiprocessing's spawned children) that carry
    the test's marker in their environment."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes()
            environ = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"spawn_main" in command and f"LABKIT_TEST_MARK={marker}".encode() in environ:
            found.append(int(entry.name))
    return found


@pytest.mark.slow  # a 2-worker cluster, one worker killed mid-trial: ~60 s
def test_a_worker_killed_mid_trial_still_completes_every_trial_once(tmp_path):
    marker = str(time.time())
    sweep = _sweep(*SWEEP, "--epochs", 40, "--runs-dir", tmp_path, "--name", "killed",
                   "--cluster", "local:2", env={"LABKIT_TEST_MARK": marker})
    folder = tmp_path / "killed"
    deadline = time.monotonic() + 180
    victim = None
    while time.monotonic() < deadline and victim is None:
        started = [h for h in folder.glob("trial-*/history.csv")
                   if len(h.read_text().splitlines()) > 3]
        workers = _workers(marker)
        if started and workers:
            victim = workers[0]
        time.sleep(0.2)
    assert victim is not None, "no trial got going"
    os.kill(victim, signal.SIGKILL)
    out, err = sweep.communicate(timeout=600)
    assert sweep.returncode == 0, err[-2000:]
    state = json.loads((folder / "sweep.json").read_text())
    assert [t["status"] for t in state["trials"]] == ["completed"] * 4
    for trial in state["trials"]:
        epochs = pd.read_csv(folder / trial["name"] / "history.csv")["epoch"].tolist()
        assert epochs == list(range(1, 41)), trial["name"]
    assert len(pd.read_csv(folder / "results.csv")) == 4
