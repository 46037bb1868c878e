"""Runs side by side (R's ``tfruns::compare_runs``) and the runs table (``ls_runs``).

- :func:`options`: a run's training options and hyperparameters as one flat mapping.
- :func:`compare`: the options that differ between runs, then each run's best and final values
  of one metric, its best epoch, status and time per epoch, as a pandas DataFrame;
  :func:`plot_compare` overlays their curves.
- :func:`runs_table`: every run under a folder (a sweep's trials too), filtered and sorted.
"""

from __future__ import annotations

import glob
import os
from pathlib import Path

from labkit import layout, runs, tasks
from labkit._lazy import lazy_import
from labkit.config import NOT_OPTIONS
from labkit.errors import LabkitError
from labkit.options import did_you_mean

pd = lazy_import("pandas")

TABLE_FORMATS = ("table", "csv", "json")  # `labkit runs --format`


def show(value) -> str:
    """An option's value as one short string: ``[16, 32]``, ``inverse-time(tau=5)``, ``-``."""
    if value is None:
        return "-"
    if isinstance(value, dict):
        if set(value) >= {"name"}:
            rest = ",".join(f"{k}={v}" for k, v in value.items() if k != "name")
            return f"{value['name']}({rest})" if rest else str(value["name"])
        return ",".join(f"{k}={v}" for k, v in value.items()) or "-"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value).replace(" ", "")


def options(config: dict) -> dict[str, str]:
    """A run's options, flat and shown as strings: training options by their config names,
    recipe hyperparameters by theirs (``--set`` names; ``hparams.NAME`` where one clashes),
    data options as ``data.NAME``."""
    flat = {k: show(v) for k, v in config.items() if k not in NOT_OPTIONS}
    for key, value in (config.get("hparams") or {}).items():
        flat[f"hparams.{key}" if key in flat else key] = show(value)
    for key, value in (config.get("data_options") or {}).items():
        flat[f"data.{key}"] = show(value)
    return flat


def expand(patterns) -> list[runs.Run]:
    """The runs named by paths or globs (``runs/lr-*``), in order, each once."""
    found: list[Path] = []
    for pattern in patterns:
        pattern = os.fspath(pattern)
        matches = sorted(glob.glob(pattern)) if glob.has_magic(pattern) else [pattern]
        if not matches:
            raise LabkitError(f"No runs match {pattern!r}.")
        found += [Path(m) for m in matches if Path(m).resolve() not in
                  {p.resolve() for p in found}]
    return [runs.open_run(path) for path in found]


def _labels(paths: list[Path]) -> list[str]:
    names = [p.name for p in paths]
    if len(set(names)) == len(names):
        return names
    return [os.path.relpath(p) for p in paths]  # trial-001 of two sweeps: say which


def default_metric(run_list: list[runs.Run]) -> str:
    """The metric to compare by: accuracy where every run has it, else the mean absolute
    error, else the loss."""
    for metric in ("accuracy", "mae"):
        if all(metric in run.history.columns for run in run_list):
            return metric
    return "loss"


def compare(run_list, metric: str | None = None, all_options: bool = False):
    """The runs side by side, a row per run (indexed by name): the options that differ (every
    option with ``all_options``), then ``best_val_METRIC`` (best over the epochs),
    ``final_METRIC``, ``final_val_METRIC``, ``best_epoch`` (by each run's monitor), ``epochs``,
    ``status`` and ``seconds_per_epoch``. ``frame.attrs["notes"]`` says when the runs'
    datasets or tasks differ; ``frame.attrs["metric"]`` is the metric used."""
    run_list = [r if isinstance(r, runs.Run) else runs.open_run(r) for r in
                (run_list if isinstance(run_list, list | tuple) else [run_list])]
    if not run_list:
        raise LabkitError("Name at least one run to compare.")
    metric = metric or default_metric(run_list)
    known = sorted({c for run in run_list for c in run.history.columns} -
                   set(layout.BOOKKEEPING))
    if not any(metric in run.history.columns for run in run_list):
        base = metric.removeprefix("val_")
        if any(base in run.history.columns for run in run_list):
            metric = base
        else:
            plain = ", ".join(m for m in known if not m.startswith("val_"))
            raise LabkitError(f"No run has a metric {metric!r}.{did_you_mean(metric, known)} "
                              f"Metrics: {plain}.")
    flat = [options(run.config) for run in run_list]
    keys = list(dict.fromkeys(k for f in flat for k in f))
    shown = keys if all_options else [k for k in keys if len({f.get(k, "-") for f in flat}) > 1]
    better = max if tasks.higher_is_better(metric) else min
    rows = []
    for run, values in zip(run_list, flat, strict=True):
        history, metrics = run.history, run.metrics
        val = history.get(f"val_{metric}")
        row = {k: values.get(k, "-") for k in shown}
        row[f"best_val_{metric}"] = better(val) if val is not None and len(val) else None
        row[f"final_{metric}"] = history[metric].iloc[-1] if metric in history and len(
            history) else None
        row[f"final_val_{metric}"] = val.iloc[-1] if val is not None and len(val) else None
        row.update(best_epoch=metrics.get("best_epoch"),
                   epochs=metrics.get("epochs_completed", len(history)),
                   status=metrics.get("status", "running"),
                   seconds_per_epoch=metrics.get("seconds_per_epoch"))
        rows.append(row)
    frame = pd.DataFrame(rows, index=pd.Index(_labels([r.path for r in run_list]), name="run"))
    notes = []
    for what in ("dataset", "task"):
        seen = sorted({str(run.config.get(what)) for run in run_list})
        if len(seen) > 1:
            notes.append(f"note: the runs differ in {what} ({', '.join(seen)}); their metrics "
                         "are not measured on the same thing.")
    frame.attrs.update(notes=notes, metric=metric, differing=shown if not all_options else
                       [k for k in keys if len({f.get(k, "-") for f in flat}) > 1])
    return frame


def plot_compare(run_list, frame, path=None) -> Path:
    """The runs' training (dashed) and validation (solid) curves of ``frame``'s metric in one
    PNG, each run in its own colour, labelled by the options that differ when that is shorter
    than its name. ``path`` defaults to compare.png beside the first run (in its runs folder);
    a folder means compare.png in it."""
    from labkit import plots

    path = Path(path) if path is not None else run_list[0].path.parent
    if path.suffix.lower() != ".png":
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            from labkit.files import FileFault

            raise FileFault(path, err) from None
        path = path / layout.COMPARE

    metric, differing = frame.attrs["metric"], frame.attrs["differing"]
    labels = []
    for name, run in zip(frame.index, run_list, strict=True):
        values = options(run.config)
        short = ", ".join(f"{k}={values.get(k, '-')}" for k in differing)
        labels.append(short if short and len(short) < len(name) else name)
    curves = [(label, run.history) for label, run in zip(labels, run_list, strict=True)]
    return plots.compare_curves(curves, metric, path)


def _row(path: Path, name: str) -> dict:
    run = runs.Run(path)
    try:
        config, metrics = run.config, run.metrics
        history = run.history
    except (LabkitError, ValueError, OSError) as err:  # pandas' parse errors are ValueErrors
        return {"name": name, "recipe": None, "dataset": None, "epochs": 0,
                "best_val_accuracy": None, "seconds": None, "status": "damaged",
                "date": "", "problem": str(err)}
    seconds = history[layout.SECONDS].sum() if layout.SECONDS in history else None
    return {"name": name, "recipe": config.get("recipe"), "dataset": config.get("dataset"),
            "epochs": metrics.get("epochs_completed", 0),
            "best_val_accuracy": metrics.get("best_val_accuracy"),
            "seconds": None if seconds is None else round(float(seconds), 1),
            "status": metrics.get("status", "running"), "date": config.get("created", ""),
            **{k: v for k, v in metrics.items() if k.startswith(("best_", "final_", "test_"))},
            **{f"option.{k}": v for k, v in options(config).items()}}


def run_folders(runs_dir) -> list[tuple[Path, str]]:
    """``(path, name)`` of every run under ``runs_dir``: its run folders, and the trials of its
    sweeps named ``SWEEP/TRIAL``."""
    runs_dir = Path(runs_dir)
    if not runs_dir.is_dir():
        raise LabkitError(f"Runs directory {str(runs_dir)!r} does not exist.")
    found = []
    for path in sorted(p for p in runs_dir.iterdir() if p.is_dir()):
        if (path / layout.CONFIG).is_file():
            found.append((path, path.name))
        elif (path / layout.SWEEP).is_file():  # a sweep: its trials are runs too
            found += [(trial, f"{path.name}/{trial.name}") for trial in sorted(path.iterdir())
                      if (trial / layout.CONFIG).is_file()]
    return found


# The short headers `labkit runs` prints for some columns; --sort takes them too.
SHOWN = {"best_val_accuracy": "best_val_acc", "seconds": "time"}


def runs_table(runs_dir, *, where=(), sort: str | None = None, last: int | None = None):
    """The runs under ``runs_dir`` as a DataFrame, a row per run: name, recipe, dataset,
    epochs done, best validation accuracy, wall time in seconds, status (``damaged`` for a run
    whose files cannot be read), date; then its metrics.json values (``best_*``, ``final_*``,
    ``test_*``) and options (``option.NAME``).

    Args:
        where: ``"key=value"`` filters, all of which must hold; a key is a column or an option
            name (``recipe=cnn``, ``status=completed``, ``optimizer=adam``, ``dropout=0.5``).
        sort: a column to sort by, best first (``val_accuracy`` means ``best_val_accuracy``;
            the printed headers of :data:`SHOWN` name their columns);
            default: by date.
        last: keep only the ``last`` most recent runs (before sorting).
    """
    frame = pd.DataFrame([_row(path, name) for path, name in run_folders(runs_dir)])
    if frame.empty:
        return frame
    for condition in where:
        key, sep, value = condition.partition("=")
        if not sep:
            raise LabkitError(f"--where takes key=value, e.g. --where recipe=cnn. "
                              f"Received: {condition!r}")
        column = key if key in frame.columns else f"option.{key}"
        if column not in frame.columns:
            names = sorted({c.removeprefix("option.") for c in frame.columns})
            raise LabkitError(f"--where: no column or option {key!r}.{did_you_mean(key, names)}")
        frame = frame[frame[column].map(lambda v, want=value: _matches(v, want))]
    frame = frame.sort_values("date", kind="stable")
    if last is not None:
        if last < 1:
            raise LabkitError(f"--last must be at least 1. Received: {last}")
        frame = frame.tail(last)
    if sort:
        sort = {short: full for full, short in SHOWN.items()}.get(sort, sort)
        column = next((c for c in (sort, f"best_{sort}", f"option.{sort}") if c in frame.columns),
                      None)
        if column is None:
            raise LabkitError(f"--sort: no column {sort!r}.{did_you_mean(sort, frame.columns)}")
        metric = column.removeprefix("best_").removeprefix("final_").removeprefix("test_")
        ascending = not tasks.higher_is_better(metric) if column != "date" else True
        frame = frame.sort_values(column, ascending=ascending, na_position="last", kind="stable")
    return frame.reset_index(drop=True).dropna(axis=1, how="all")


def _matches(value, wanted: str) -> bool:
    if value is None or (isinstance(value, float) and value != value):
        return wanted in ("", "-", "none", "None")
    if isinstance(value, float | int) and not isinstance(value, bool):
        try:
            return float(value) == float(wanted)
        except ValueError:
            return False
    return str(value) == wanted
