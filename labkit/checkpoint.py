"""Checkpoints that resume exactly: one ``.keras`` file holding the model and labkit's state.

Keras's ``.keras`` file is a zip archive; labkit adds three entries to it before the file is
renamed into place: ``labkit/state.json`` (epoch, phase, best metric, callback counters),
``labkit/optimizer.npz`` (the variables of the optimizer being used: step count, learning rate,
moments) and, with early stopping that restores, ``labkit/best_weights.npz``. Keras ignores them
when loading, so the file is also an ordinary model file. Because it is one file written
atomically, the model and the state can never disagree.
"""

from __future__ import annotations

import io
import json
import shutil
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from labkit import files

_STATE, _OPTIMIZER, _BEST_WEIGHTS = "labkit/state.json", "labkit/optimizer.npz", \
    "labkit/best_weights.npz"


@dataclass
class Checkpoint:
    """What :func:`read` finds besides the model."""

    state: dict
    optimizer: list[np.ndarray]
    best_weights: list[np.ndarray] | None


def save(model, path: str | Path, state: dict, optimizer=None, best_weights=None,
         also: tuple[str | Path, ...] = ()) -> None:
    """Write ``model``, ``state``, ``optimizer``'s variables and ``best_weights`` to ``path``,
    and the same file to each path in ``also`` first (one model serialisation for both)."""
    with files.atomic_path(path) as tmp:
        model.save(tmp)
        with zipfile.ZipFile(tmp, "a") as archive:
            archive.writestr(_STATE, json.dumps(state, default=files.jsonable))
            if optimizer is not None:
                archive.writestr(_OPTIMIZER, _arrays([v.numpy() if hasattr(v, "numpy")
                                                      else np.asarray(v)
                                                      for v in optimizer.variables]))
            if best_weights is not None:
                archive.writestr(_BEST_WEIGHTS, _arrays(best_weights))
        for other in also:
            with files.atomic_path(other) as copy:
                shutil.copyfile(tmp, copy)


def read(path: str | Path) -> Checkpoint:
    """The labkit entries of a checkpoint written by :func:`save`; a LabkitError names a
    damaged file."""
    from labkit.errors import LabkitError

    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
            state = json.loads(archive.read(_STATE))
            optimizer = _unarrays(archive.read(_OPTIMIZER)) if _OPTIMIZER in names else []
            best = _unarrays(archive.read(_BEST_WEIGHTS)) if _BEST_WEIGHTS in names else None
    except KeyError:
        raise LabkitError(f"{path} is not a labkit checkpoint (it has no {_STATE}).") from None
    except (zipfile.BadZipFile, ValueError, EOFError, OSError) as err:
        raise LabkitError(f"{path} is damaged ({err}); it may have been cut short by a full "
                          "disk or an interrupted copy.") from None
    return Checkpoint(state, optimizer, best)


def saved_epochs(path: str | Path) -> int:
    """The epochs the checkpoint at ``path`` holds: 0 when there is none (or it is damaged:
    then ``--resume`` falls back on best.keras and says so)."""
    from labkit.errors import LabkitError

    if not Path(path).exists():
        return 0
    try:
        return int(read(path).state.get("epoch", 0))
    except LabkitError:
        return 0


def restore_optimizer(optimizer, variables, values: list[np.ndarray]) -> None:
    """Build ``optimizer`` for ``variables`` and load saved ``values`` into it."""
    optimizer.build(variables)
    if len(optimizer.variables) != len(values):
        raise ValueError(f"the checkpoint holds {len(values)} optimizer variables, the optimizer "
                         f"has {len(optimizer.variables)}")
    for variable, value in zip(optimizer.variables, values, strict=True):
        variable.assign(value)


def _arrays(values: list[np.ndarray]) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, *values)
    return buffer.getvalue()


def _unarrays(data: bytes) -> list[np.ndarray]:
    with np.load(io.BytesIO(data), allow_pickle=False) as loaded:
        return [loaded[f"arr_{i}"] for i in range(len(loaded.files))]
