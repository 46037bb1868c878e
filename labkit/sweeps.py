"""Hyperparameter sweeps (R's ``tfruns::tuning_run``): every trial a normal run directory.

A sweep lives in ``RUNS_DIR/SWEEP-NAME/``: ``sweep.json`` (the base config, the space, the seed,
the trial list and each trial's status, rewritten atomically as trials start and end), the trials
``trial-001``, ``trial-002``, … and, once every trial has ended, ``results.csv`` (sorted by the
monitored metric, best first) and ``sweep.png`` (that metric against each swept option).

The space:

- ``grid``: ``{name: [values]}``; without ``random`` every combination is a trial, in order.
- ``random: N`` samples N trials with the seed; then ``range`` (``{name: "uniform(a,b)"}``,
  ``loguniform(a,b)``, ``int(a,b)`` with both ends included), ``choice`` (``{name: [values]}``) and
  any ``grid`` lists are each drawn from.

A name is a training option (``learning_rate``, ``optimizer``, ``batch_size``, …) or a recipe
hyperparameter (as for ``--set``). Every trial's config is resolved before the first one starts,
so a bad value stops the sweep before anything trains. A killed sweep resumes with
:func:`resume`: finished trials are kept, the half-finished one continues from its last epoch.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import itertools
import math
import shutil
import threading
import time
from pathlib import Path
from typing import Any

from labkit import layout, runs, tasks
from labkit._lazy import lazy_import
from labkit.config import NOT_OPTIONS, TrainConfig
from labkit.errors import LabkitError
from labkit.files import FileFault, write_json
from labkit.options import did_you_mean, parse_call

np = lazy_import("numpy")
pd = lazy_import("pandas")
training = lazy_import("labkit.training")  # Keras loads only when a trial trains

DISTRIBUTIONS = ("uniform", "loguniform", "int")
ENDED = ("completed", "diverged", "failed")


def parse_range(name: str, text: str) -> dict[str, Any]:
    """``"loguniform(1e-4, 1e-1)"`` → ``{"distribution": "loguniform", "low": 1e-4,
    "high": 0.1}``, checked."""
    try:
        kind, args, kwargs = parse_call(str(text).strip())
    except ValueError:
        kind, args, kwargs = "", [], {}
    if kind not in DISTRIBUTIONS or kwargs or len(args) != 2 or not all(
            isinstance(a, int | float) and not isinstance(a, bool) for a in args):
        raise LabkitError(f"--range {name}: expected uniform(LOW,HIGH), loguniform(LOW,HIGH) or "
                          f"int(LOW,HIGH). Received: {text!r}")
    low, high = args
    if low >= high:
        raise LabkitError(f"--range {name}: the low end must be below the high end. "
                          f"Received: {text!r}")
    if kind == "loguniform" and low <= 0:
        raise LabkitError(f"--range {name}: loguniform needs positive ends. Received: {text!r}")
    if kind == "int" and not all(isinstance(a, int) for a in args):
        raise LabkitError(f"--range {name}: int takes whole numbers. Received: {text!r}")
    return {"distribution": kind, "low": low, "high": high}


def space_from(grid=None, ranges=None, choices=None, random: int | None = None) -> dict:
    """The sweep space, checked: lists non-empty, ranges parsed, ``random`` needed for ranges
    and choices; returns the JSON-ready mapping stored in sweep.json."""
    grid, choices = dict(grid or {}), dict(choices or {})
    ranges = {k: v if isinstance(v, dict) else parse_range(k, v) for k, v in (ranges or {}).items()}
    for option, values in (("--grid", grid), ("--choice", choices)):
        for name, listed in values.items():
            if not isinstance(listed, list) or not listed:
                raise LabkitError(f"{option} {name}: expected a non-empty list, e.g. "
                                  f"{option} '{name}=[0.1,0.01]'. Received: {listed!r}")
    names = [*grid, *ranges, *choices]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise LabkitError(f"Swept more than once: {', '.join(repeated)}.")
    if not names:
        raise LabkitError("Nothing to sweep: give --grid NAME=[...] (every combination) or "
                          "--random N with --range/--choice.")
    if random is None and (ranges or choices):
        raise LabkitError("--range and --choice are sampled: add --random N (the number of "
                          "trials).")
    if random is not None and (isinstance(random, bool) or not isinstance(random, int) or
                               random < 1):
        raise LabkitError(f"--random must be a whole number >= 1. Received: {random!r}")
    return {"grid": grid, "range": ranges, "choice": choices, "random": random}


def space_and_limit(config_file=None, grid=None, ranges=None, choices=None,
                    random: int | None = None, max_trials: int | None = None):
    """``(space, max_trials)`` from a config file's ``sweep:`` block (grid, range, choice,
    random, max_trials) and the values given, which override it."""
    from labkit.config import read_config_file

    block = read_config_file(config_file).get("sweep") or {} if config_file else {}
    if not isinstance(block, dict) or set(block) - {"grid", "range", "choice", "random",
                                                     "max_trials"}:
        raise LabkitError(f"{config_file}: sweep: must be a mapping of grid, range, choice, "
                          "random and max_trials.")
    space = space_from(grid={**block.get("grid", {}), **(grid or {})},
                       ranges={**block.get("range", {}), **(ranges or {})},
                       choices={**block.get("choice", {}), **(choices or {})},
                       random=random if random is not None else block.get("random"))
    return space, max_trials if max_trials is not None else block.get("max_trials")


def plan(space: dict, seed: int) -> list[dict[str, Any]]:
    """The trials' values: every grid combination, or ``random`` draws with ``seed``."""
    if space["random"] is None:
        names = list(space["grid"])
        return [dict(zip(names, combo, strict=True))
                for combo in itertools.product(*space["grid"].values())]
    rng = np.random.default_rng(seed)
    trials = []
    for _ in range(space["random"]):
        values: dict[str, Any] = {}
        for name, listed in {**space["grid"], **space["choice"]}.items():
            values[name] = listed[int(rng.integers(len(listed)))]
        for name, spec in space["range"].items():
            low, high = spec["low"], spec["high"]
            if spec["distribution"] == "uniform":
                values[name] = float(rng.uniform(low, high))
            elif spec["distribution"] == "loguniform":
                values[name] = float(math.exp(rng.uniform(math.log(low), math.log(high))))
            else:
                values[name] = int(rng.integers(low, high + 1))
        trials.append(values)
    return trials


def trial_config(base: dict, values: dict[str, Any], folder: Path, name: str) -> TrainConfig:
    """The resolved config of one trial: ``base`` (a config mapping) with ``values`` applied,
    training options at the top, the rest as hyperparameters."""
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    config = {**base, "hparams": dict(base.get("hparams") or {}), "runs_dir": str(folder),
              "name": name}
    for key, value in values.items():
        if key in fields:
            config[key] = value
        else:
            config["hparams"][key] = value
    return TrainConfig.from_dict(config).resolve()


def check_names(base: TrainConfig, space: dict) -> None:
    """Every swept name is a training option or one of the recipe's hyperparameters."""
    from labkit import registry

    fields = {f.name for f in dataclasses.fields(TrainConfig)} - NOT_OPTIONS - {"recipe"}
    hyper = set(registry.get_recipe(base.recipe).hyperparameters)
    for name in (*space["grid"], *space["range"], *space["choice"]):
        if name not in fields | hyper:
            raise LabkitError(f"Cannot sweep {name!r}: it is neither a training option nor a "
                              f"hyperparameter of {base.recipe}."
                              f"{did_you_mean(name, sorted(fields | hyper))}")


def _trial_name(index: int) -> str:
    return f"trial-{index:03d}"


@dataclasses.dataclass
class Sweep:
    """A sweep folder and its ``sweep.json``."""

    path: Path
    state: dict

    @classmethod
    def open(cls, path) -> Sweep:
        import json

        path = Path(path)
        file = path / layout.SWEEP
        if not file.is_file():
            raise LabkitError(f"{path} is not a sweep folder (it has no {layout.SWEEP}).")
        try:
            return cls(path, json.loads(file.read_text()))
        except (ValueError, OSError) as err:
            raise LabkitError(f"{file} cannot be read: {err}") from None

    def save(self) -> None:
        write_json(self.path / layout.SWEEP, self.state)

    @property
    def trials(self) -> list[dict]:
        return self.state["trials"]

    @property
    def monitor(self) -> str:
        return self.state["monitor"]


def create(config: TrainConfig, space: dict, *, name: str | None = None,
           max_trials: int | None = None) -> Sweep:
    """Check the space and every trial's config, then write the sweep folder and its
    sweep.json (nothing trains yet). ``config`` is the base: the training options every trial
    shares; its ``runs_dir`` holds the sweep, its ``seed`` draws random trials (and seeds each
    trial's training)."""
    check_names(config, space)
    values = plan(space, config.seed)
    if max_trials is not None:
        if max_trials < 1:
            raise LabkitError(f"--max-trials must be at least 1. Received: {max_trials}")
        values = values[:max_trials]
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    name = name or f"sweep-{config.recipe}-{Path(str(config.dataset)).stem}-{stamp}"
    folder = runs.checked_child(config.runs_dir, name)
    if folder.exists():
        raise LabkitError(f"{folder} exists; continue it with --resume {folder}, or pick "
                          "another --name.")
    base = {k: v for k, v in config.to_dict().items()
            if k not in layout.RECORD_ONLY | {"name"}}
    for index, trial in enumerate(values, 1):
        trial_config(base, trial, folder, _trial_name(index))  # a bad value fails here
    folder.mkdir(parents=True)
    sweep = Sweep(folder, {
        "recipe": config.recipe, "base": base, "space": space, "seed": config.seed,
        "monitor": config.monitor, "created": dt.datetime.now().isoformat(timespec="seconds"),
        "trials": [{"name": _trial_name(i), "values": v, "status": "pending"}
                   for i, v in enumerate(values, 1)]})
    sweep.save()
    return sweep


def run_trials(sweep: Sweep, echo=print, max_time: float | None = None,
               stop: threading.Event | None = None) -> Sweep:
    """Run the sweep's trials that have not ended: a trial folder left by a killed or stopped
    sweep resumes from its last epoch, one that never started is trained; a diverging trial is
    recorded and the sweep goes on. Stops starting new trials after ``max_time`` seconds. At the
    end (every trial ended) writes results.csv and sweep.png. ``stop`` set: the running trial
    stops at its next epoch boundary (:class:`labkit.training.Interrupted`), as on Ctrl-C."""
    start = time.monotonic()
    total = len(sweep.trials)
    for index, trial in enumerate(sweep.trials, 1):
        if trial["status"] in ENDED:
            continue
        if max_time is not None and time.monotonic() - start > max_time:
            left = sum(t["status"] not in ENDED for t in sweep.trials)
            echo(f"--max-time reached: {left} trials not run. Continue with: "
                 f"labkit sweep --resume {sweep.path}")
            break
        folder = sweep.path / trial["name"]
        echo(f"[{index}/{total}] {trial['name']}: {shown(trial['values'])}")
        trial["status"] = "running"
        sweep.save()
        try:
            run = train_or_resume(sweep, trial, folder, echo, stop)
        except training.Interrupted:
            trial["status"] = "interrupted"
            sweep.save()
            raise
        except (training.StoppedByFault, FileFault) as fault:  # the next trial would fail too
            trial["status"] = "interrupted"
            with contextlib.suppress(LabkitError):
                sweep.save()
            raise LabkitError(f"{fault} The sweep stopped at {trial['name']}; once that is "
                              f"fixed, continue it with: labkit sweep --resume "
                              f"{sweep.path}") from None
        except LabkitError as err:
            trial.update(status="failed", error=str(err))
            echo(f"  failed: {err}")
            sweep.save()
            continue
        trial["status"] = run.metrics.get("status", "completed")
        sweep.save()
    if all(t["status"] in ENDED for t in sweep.trials):
        write_results(sweep)
    return sweep


def shown(values: dict) -> str:
    """A trial's values in one line: ``learning_rate=0.01, dropout=0.5``."""
    return ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}"
                     for k, v in values.items())


def train_or_resume(sweep: Sweep, trial: dict, folder: Path, echo,
                    stop: threading.Event | None):
    """Train ``trial`` into ``folder``, or resume it there when a checkpoint says it started
    (a killed sweep, a worker that died); a run that already ended is returned as it is."""
    if (folder / layout.CONFIG).is_file():
        run = runs.open_run(folder)
        if run.metrics.get("status") in ("completed", "diverged"):
            return run  # it ended after the sweep last wrote sweep.json
        return training.resume(folder, echo, stop)
    if folder.exists():  # made, but killed before its config was written
        shutil.rmtree(folder)
    config = trial_config(sweep.state["base"], trial["values"], sweep.path, trial["name"])
    return training.train(config, echo, stop)


def results(sweep: Sweep):
    """The trials as a DataFrame: name, swept values, status, epochs, the best monitored value,
    final and test metrics; sorted by the monitored value, best first."""
    monitor = sweep.monitor
    rows = []
    for trial in sweep.trials:
        row = {"trial": trial["name"], **trial["values"], "status": trial["status"]}
        folder = sweep.path / trial["name"]
        if (folder / layout.METRICS).is_file():
            metrics = runs.open_run(folder).metrics
            row["epochs"] = metrics.get("epochs_completed")
            row[f"best_{monitor}"] = metrics.get(f"best_{monitor}")
            row.update({k: v for k, v in metrics.items()
                        if k.startswith(("final_val_", "test_")) or k == "seconds_per_epoch"})
        rows.append(row)
    frame = pd.DataFrame(rows)
    column = f"best_{monitor}"
    if column in frame:
        frame = frame.sort_values(column, ascending=not tasks.higher_is_better(monitor),
                                  na_position="last", kind="stable")
    return frame.reset_index(drop=True)


def write_results(sweep: Sweep) -> None:
    """results.csv and sweep.png in the sweep folder."""
    from labkit import plots
    from labkit.files import atomic_path

    frame = results(sweep)
    with atomic_path(sweep.path / layout.RESULTS) as tmp:
        frame.to_csv(tmp, index=False)
    space = sweep.state["space"]
    swept = {**{n: v if not _numeric(v) else "auto" for n, v in space["grid"].items()},
             **{n: "log" if s["distribution"] == "loguniform" else "linear"
                for n, s in space["range"].items()},
             **dict(space["choice"].items())}
    column = f"best_{sweep.monitor}"
    if column in frame and frame[column].notna().any():
        plots.sweep_points(frame, swept, column, sweep.path / layout.SWEEP_PICTURE)


def _numeric(values: list) -> bool:
    return all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)


def reopen(path, echo=print) -> Sweep:
    """The sweep at ``path``, to continue; says how many of its trials have ended."""
    sweep = Sweep.open(path)
    done = sum(t["status"] in ENDED for t in sweep.trials)
    echo(f"Resuming {sweep.path}: {done} of {len(sweep.trials)} trials ended")
    return sweep


def resume(path, echo=print, max_time: float | None = None,
           stop: threading.Event | None = None) -> Sweep:
    """Continue the sweep at ``path`` here: ended trials are kept, the rest run (``stop`` as
    for :func:`run_trials`)."""
    return run_trials(reopen(path, echo), echo, max_time, stop)
