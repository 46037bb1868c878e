"""Run directories: ``runs/<name>/`` with config, history, metrics, model and plots.

Every file is written atomically (temporary file in the same folder, then ``os.replace``), so a run
killed at any instant leaves each file either whole or absent.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labkit.errors import LabkitError

CONFIG, HISTORY, METRICS, MODEL, CURVES = (
    "config.json", "history.csv", "metrics.json", "model.keras", "curves.png")
TENSORBOARD = "tensorboard"


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` (same suffix); on success rename it over ``path``."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=path.suffix)
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json(path: str | os.PathLike, data: Any) -> None:
    write_text(path, json.dumps(data, indent=2, sort_keys=False, default=jsonable) + "\n")


def jsonable(value: Any) -> Any:
    """JSON for numpy scalars and tuples; ``json.dumps(..., default=jsonable)``."""
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    if isinstance(value, (tuple, set)):
        return list(value)
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


@dataclass(frozen=True)
class Run:
    """A run directory on disk."""

    path: Path

    def file(self, name: str) -> Path:
        return self.path / name

    @property
    def config(self) -> dict:
        return self._json(CONFIG)

    @property
    def metrics(self) -> dict:
        return self._json(METRICS) if self.file(METRICS).exists() else {}

    def _json(self, name: str) -> dict:
        try:
            return json.loads(self.file(name).read_text())
        except FileNotFoundError:
            raise LabkitError(f"{self.path} has no {name}; is it a labkit run directory?") from None
        except json.JSONDecodeError as err:
            raise LabkitError(f"{self.file(name)} is not valid JSON: {err}") from None


def open_run(path: str | os.PathLike) -> Run:
    """The run at ``path``; a missing folder or one without config.json is a LabkitError."""
    path = Path(path)
    if not path.is_dir():
        raise LabkitError(f"Run directory {str(path)!r} does not exist. See `labkit runs`.")
    if not (path / CONFIG).is_file():
        raise LabkitError(f"{str(path)!r} is not a labkit run directory (no {CONFIG}).")
    return Run(path)


def create_run(runs_dir: str | os.PathLike, name: str) -> Run:
    """Make a fresh ``runs_dir/name``; an existing name gets a ``-2``, ``-3``… suffix."""
    runs_dir = Path(runs_dir)
    runs_dir.mkdir(parents=True, exist_ok=True)
    candidate, k = runs_dir / name, 1
    while True:
        try:
            candidate.mkdir()
            return Run(candidate)
        except FileExistsError:
            k += 1
            candidate = runs_dir / f"{name}-{k}"


def list_runs(runs_dir: str | os.PathLike) -> list[dict]:
    """A row per run under ``runs_dir``: name, recipe, dataset, epochs, best val accuracy, date."""
    runs_dir = Path(runs_dir)
    if not runs_dir.is_dir():
        raise LabkitError(f"Runs directory {str(runs_dir)!r} does not exist.")
    rows = []
    for path in sorted(p for p in runs_dir.iterdir() if (p / CONFIG).is_file()):
        run = Run(path)
        try:
            config, metrics = run.config, run.metrics
        except LabkitError:
            continue  # a folder a user broke by hand is skipped, not fatal for the listing
        rows.append({
            "name": path.name,
            "recipe": config.get("recipe"),
            "dataset": config.get("dataset"),
            "epochs": metrics.get("epochs_completed", 0),
            "best_val_accuracy": metrics.get("best_val_accuracy"),
            "status": metrics.get("status", "running"),
            "date": config.get("created", ""),
        })
    return rows
