"""Where a sweep's trials run: here one after another (:mod:`labkit.sweeps`), or, with
``labkit sweep --cluster ADDRESS``, as tasks of a Dask distributed cluster (:func:`run`,
:func:`resume` choose).

Dask, not a scheduler of labkit's own: a cluster is started the way Dask's users start one
(``dask scheduler`` on one machine, ``dask worker tcp://HOST:8786`` on each of the others), or
``local:N`` starts N worker processes on this machine. Each trial is one task, which calls
:func:`labkit.training.train` (or ``resume``) in a worker and writes its own run directory in the
sweep folder, so the runs folder must be shared by the machines. This process is the only one
that writes ``sweep.json``: it hands out a trial whenever a worker is free, records each as it
ends, and writes ``results.csv`` and ``sweep.png`` once every trial has.

Dask runs a task again on another worker when its worker dies; the trial then resumes from its
last finished epoch (its folder has a checkpoint), so each epoch is trained once.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time

from labkit import interrupts, runs, sweeps
from labkit.errors import LabkitError
from labkit.sweeps import ENDED, Sweep, shown, train_or_resume, write_results

LOCAL = "local:"  # local:N starts N worker processes here
RETRIES = 3  # a trial whose worker dies more often than this is recorded failed


def run(sweep: Sweep, echo=print, max_time: float | None = None,
        stop: threading.Event | None = None, address: str | None = None) -> Sweep:
    """The sweep's unended trials: here, one after another (:func:`labkit.sweeps.run_trials`),
    or as tasks of the Dask cluster at ``address`` (:func:`run_trials`)."""
    if address is None:
        return sweeps.run_trials(sweep, echo, max_time, stop)
    return run_trials(sweep, address, echo, max_time, stop)


def resume(path, echo=print, max_time: float | None = None,
           stop: threading.Event | None = None, address: str | None = None) -> Sweep:
    """Continue the sweep at ``path``, here or on the cluster at ``address`` (see :func:`run`):
    ended trials are kept, an interrupted one resumes from its last epoch."""
    return run(sweeps.reopen(path, echo), echo, max_time, stop, address)


def run_trials(sweep: Sweep, address: str, echo=print, max_time: float | None = None,
               stop: threading.Event | None = None) -> Sweep:
    """Run the sweep's unended trials on the Dask cluster at ``address`` (``tcp://HOST:PORT``
    or ``local:N``), a trial whenever a worker is free; no new trial starts after ``max_time``
    seconds. ``stop`` set, or Ctrl-C: the running trials are cancelled (each keeps its finished
    epochs) and :class:`labkit.training.Interrupted` is raised."""
    from labkit import training

    with _client(address) as client:
        workers = max(1, len(client.scheduler_info().get("workers", {})))
        echo(f"Cluster {address}: {workers} worker(s)")
        waiting = [t for t in sweep.trials if t["status"] not in ENDED]
        running: dict = {}
        start = time.monotonic()
        try:
            while waiting or running:
                late = max_time is not None and time.monotonic() - start > max_time
                while waiting and len(running) < workers and not late:
                    trial = waiting.pop(0)
                    trial["status"] = "running"
                    echo(f"→ {trial['name']}: {shown(trial['values'])}")
                    future = client.submit(run_trial, str(sweep.path), trial["name"],
                                           key=f"labkit-{sweep.path.name}-{trial['name']}",
                                           pure=False, retries=0)
                    running[future] = trial
                sweep.save()
                if late and waiting and not running:
                    echo(f"--max-time reached: {len(waiting)} trials not run. Continue with: "
                         f"labkit sweep --resume {sweep.path} --cluster {address}")
                    break
                if not running:
                    break
                _record(_next_done(running, stop), running, sweep, echo)
        except KeyboardInterrupt as err:
            for future, trial in running.items():
                future.cancel()
                trial["status"] = "interrupted"
            with contextlib.suppress(LabkitError):
                sweep.save()
            first = next(iter(running.values()), sweep.trials[0])
            raise training.Interrupted(runs.Run(sweep.path / first["name"]),
                                       interrupts.exit_code(err)) from None
    if all(t["status"] in ENDED for t in sweep.trials):
        write_results(sweep)
    return sweep


def run_trial(sweep_path: str, name: str) -> dict:
    """One trial, in a worker: train it, or resume it when its folder has a checkpoint (a
    worker died in it). Returns ``{"status", "error"}``."""
    from labkit._startup import import_tensorflow

    import_tensorflow()
    sweep = Sweep.open(sweep_path)
    trial = next(t for t in sweep.trials if t["name"] == name)
    try:
        run = train_or_resume(sweep, trial, sweep.path / name, lambda _: None, None)
    except LabkitError as err:
        return {"status": "failed", "error": str(err)}
    return {"status": run.metrics.get("status", "completed"), "error": None}


def _next_done(running: dict, stop: threading.Event | None):
    """The first future of ``running`` to finish; ``stop`` set meanwhile: KeyboardInterrupt."""
    from dask.distributed import wait

    while True:
        try:
            done, _ = wait(list(running), timeout=0.5, return_when="FIRST_COMPLETED")
        except TimeoutError:  # nothing finished yet
            done = ()
        if done:
            return next(iter(done))
        if stop is not None and stop.is_set():
            raise KeyboardInterrupt


def _record(future, running: dict, sweep: Sweep, echo) -> None:
    trial = running.pop(future)
    try:
        outcome = future.result()
    except Exception as err:  # noqa: BLE001 — the task's error, or Dask's KilledWorker
        outcome = {"status": "failed", "error": f"{type(err).__name__}: {err}"}
    trial["status"] = outcome["status"]
    if outcome["error"]:
        trial["error"] = outcome["error"]
        echo(f"  {trial['name']} failed: {outcome['error']}")
    else:
        echo(f"  {trial['name']}: {trial['status']}")
    sweep.save()


def check(address: str) -> int | None:
    """``address`` checked before anything is written, and Dask installed: the worker count
    of ``local:N``, None for a scheduler's address; a LabkitError says what is wrong."""
    import importlib.util

    if importlib.util.find_spec("distributed") is None:
        raise LabkitError('--cluster needs Dask distributed: pip install -e ".[cluster]"')
    if address.startswith(LOCAL):
        count = address[len(LOCAL):]
        if not count.isdigit() or int(count) < 1:
            raise LabkitError(f"--cluster local:N needs N >= 1 workers. Received: {address!r}")
        return int(count)
    if "://" not in address:
        raise LabkitError(f"--cluster takes a Dask scheduler's address (tcp://HOST:8786) or "
                          f"local:N. Received: {address!r}")
    return None


@contextlib.contextmanager
def _client(address: str):
    """A Dask client of the cluster at ``address``; ``local:N`` starts (and ends) N worker
    processes here. An unreachable scheduler is a LabkitError."""
    from dask.distributed import Client, LocalCluster

    count = check(address)
    if count is not None:
        # one thread per worker: a trial is a whole training, and TensorFlow threads itself
        with LocalCluster(n_workers=count, threads_per_worker=1, processes=True,
                          dashboard_address=None, silence_logs=logging.ERROR) as cluster, \
                Client(cluster) as client:
            yield client
        return
    try:
        client = Client(address, timeout="20s")
    except (OSError, TimeoutError) as err:
        raise LabkitError(f"Could not reach the Dask scheduler at {address}: {err}") from None
    with client:
        yield client

