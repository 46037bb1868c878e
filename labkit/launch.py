"""``labkit launch``: a data-parallel process group on this machine, started for you.

``launch(2, ["train", "cnn", "--distribute", "data-parallel"])`` picks a free port on
127.0.0.1, starts ``labkit train ...`` twice with the group in Keras's own variables
(``KERAS_DISTRIBUTION_JOB_ADDRESSES``, ``…_NUM_PROCESSES``, ``…_PROCESS_ID``) and
``KERAS_BACKEND=jax`` unless it is set, shows process 0's output as it comes, keeps the others'
in log files, and when one process fails stops the rest and exits with its code. It is how a
laptop, a test or one machine with several GPUs runs what several machines run with
``--coordinator``/``--num-processes``/``--process-id`` or Slurm's ``srun``.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from labkit.errors import LabkitError
from labkit.processes import ProcessGroup

LAUNCHED = "LABKIT_LAUNCHED"  # set in every process it starts: they must join the group
GRACE_SECONDS = 10.0  # a process asked to stop (SIGTERM) is killed after this long


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def launch(processes: int, args: list[str], echo=print, log_dir: str | None = None) -> int:
    """Run ``labkit ARGS`` as ``processes`` processes of one data-parallel group; returns the
    exit code: 0 when all succeed, else the first failing process's (the others are stopped).
    Process 0 writes to this process's output; process I's output goes to
    ``LOG_DIR/process-I.log`` (default: a temporary folder, named when a process fails)."""
    if isinstance(processes, bool) or not isinstance(processes, int) or processes < 1:
        raise LabkitError(f"--processes must be an integer >= 1. Received: {processes!r}")
    if not args or args[0] != "train":
        raise LabkitError("labkit launch starts `labkit train ...` processes, e.g. labkit "
                          "launch --processes 2 -- train cnn --distribute data-parallel.")
    logs = Path(log_dir) if log_dir else Path(tempfile.mkdtemp(prefix="labkit-launch-"))
    logs.mkdir(parents=True, exist_ok=True)
    coordinator = f"127.0.0.1:{free_port()}"
    base = {**os.environ, LAUNCHED: "1"}
    base.setdefault("KERAS_BACKEND", "jax")
    children: list[subprocess.Popen] = []
    try:
        for rank in range(processes):
            group = ProcessGroup(coordinator, processes, rank, "labkit launch")
            env = {**base, **group.environment()}
            output = None if rank == 0 else open(logs / f"process-{rank}.log", "w")  # noqa: SIM115
            children.append(subprocess.Popen([sys.executable, "-m", "labkit", *args], env=env,
                                             stdout=output, stderr=subprocess.STDOUT
                                             if output else None))
            if output:
                output.close()
        return _watch(children, logs, echo)
    except KeyboardInterrupt:
        _stop(children, signal.SIGINT)
        return 130


def _watch(children: list[subprocess.Popen], logs: Path, echo) -> int:
    """Wait for every child; the first one that fails stops the others."""
    while True:
        codes = [child.poll() for child in children]
        failed = next(((rank, code) for rank, code in enumerate(codes)
                       if code not in (None, 0)), None)
        if failed is not None:
            rank, code = failed
            code = code if code > 0 else 128 - code  # killed by signal N: 128 + N, as a shell
            _stop(children, signal.SIGTERM)
            if rank:
                echo(f"labkit launch: process {rank} failed (exit {code}); the others were "
                     f"stopped. Its output: {logs / f'process-{rank}.log'}")
                echo(_tail(logs / f"process-{rank}.log"))
            return code
        if all(code == 0 for code in codes):
            return 0
        time.sleep(0.2)


def _stop(children: list[subprocess.Popen], how: int) -> None:
    """Ask every running child to stop (``how``), then kill what is left after a grace time."""
    for child in children:
        if child.poll() is None:
            child.send_signal(how)
    deadline = time.monotonic() + GRACE_SECONDS
    for child in children:
        try:
            child.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""
