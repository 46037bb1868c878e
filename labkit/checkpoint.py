"""Checkpoints that resume exactly: one ``.keras`` file holding the model and labkit's state,
written in the background while the next epoch trains.

Keras's ``.keras`` file is a zip archive; labkit adds its entries to it: ``labkit/state.json``
(epoch, phase, best metric, callback counters); the variables of the optimizer being used (step
count, learning rate, moments): ``labkit/optimizer.json`` when they are the model's own, which
Keras's weights file holds already (it says where), or else (a phase training a part of the
model) ``labkit/optimizer.npz``; and, with early stopping that restores,
``labkit/best_weights.npz``. Keras ignores them when loading, so the file is also an ordinary
model file. Because it is one file, renamed into place once it is whole and flushed to the disk,
the model and the state can never disagree.

Keras's ``model.save`` walks the whole model in Python each time (~15–25 ms for the course's
models, whatever their size), which a training loop of 30 ms epochs notices. So a run's first
checkpoint is Keras's own, and labkit notes where each variable's bytes lie in its weights file
(:class:`Layout`); later ones copy that file with the current values in those places, which is
byte for byte what ``model.save`` writes (tested). Any change Keras's walk would see (another
optimizer, a new learning rate in the config, a variable of a new shape) makes a new layout with
``model.save`` again.

:class:`Writer` takes the values on the calling thread (a copy, ~0.1 ms) and writes the file on
a thread of its own, one checkpoint at a time, in order (a small one, at once).
"""

from __future__ import annotations

import datetime as dt
import io
import json
import tempfile
import zipfile
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from labkit import files

_STATE, _OPTIMIZER, _BEST_WEIGHTS = "labkit/state.json", "labkit/optimizer.npz", \
    "labkit/best_weights.npz"
_OPTIMIZER_IN_WEIGHTS = "labkit/optimizer.json"  # {"group": "optimizer/vars", "count": n}
_OPTIMIZER_GROUP = "optimizer/vars"  # where Keras's weights file holds model.optimizer's
_WEIGHTS, _METADATA = "model.weights.h5", "metadata.json"  # Keras's names in a .keras file


@dataclass
class Checkpoint:
    """What :func:`read` finds besides the model."""

    state: dict
    optimizer: list[np.ndarray]
    best_weights: list[np.ndarray] | None


@dataclass
class Archive:
    """A checkpoint's files, ready to write: the archive's entries in order."""

    entries: list[tuple[str, bytes | Arrays | Placed]]
    state: dict

    @property
    def size(self) -> int:
        """About how many bytes the file will have."""
        return sum(len(data) if isinstance(data, bytes) else data.size
                   for _, data in self.entries)

    def add_to(self, batch: files.Batch, path: str | Path,
               also: tuple[str | Path, ...] = ()) -> None:
        """Add the archive to ``batch`` as ``path``, and first as each of ``also`` (copies of
        their own: a file damaged in place later leaves the others whole)."""
        content = io.BytesIO()
        with zipfile.ZipFile(content, "w") as archive:
            for name, data in self.entries:
                archive.writestr(name, data if isinstance(data, bytes) else data.bytes())
        for target in (*also, path):
            batch.write(target, content.getbuffer())


@dataclass
class Arrays:
    """Arrays to store as an ``.npz`` file (made on the writer's thread)."""

    values: list[np.ndarray]

    @property
    def size(self) -> int:
        return sum(v.nbytes for v in self.values)

    def bytes(self) -> bytes:
        buffer = io.BytesIO()
        np.savez(buffer, *self.values)
        return buffer.getvalue()


@dataclass
class Placed:
    """A weights file from a :class:`Layout` and the values to place in it."""

    layout: Layout
    values: list[np.ndarray]

    @property
    def size(self) -> int:
        return len(self.layout.weights)

    def bytes(self) -> bytes:
        image = bytearray(self.layout.weights)
        for (offset, size), value in zip(self.layout.spans, self.values, strict=True):
            image[offset:offset + size] = value.tobytes()
        return bytes(image)


@dataclass
class Layout:
    """A model's ``.keras`` file as ``model.save`` wrote it, and where in its weights file each
    variable's bytes lie (``spans``, in the order of ``variables``)."""

    key: tuple
    entries: list[tuple[str, bytes]]  # Keras's files, in its order
    variables: list  # the Keras variables whose values the spans hold
    spans: list[tuple[int, int]]  # (offset, bytes) in model.weights.h5
    dtypes: list[np.dtype]

    @property
    def weights(self) -> bytes:
        """Keras's model.weights.h5."""
        return dict(self.entries)[_WEIGHTS]

    def fits(self, values: list[np.ndarray]) -> bool:
        return all(v.dtype == d and v.nbytes == size
                   for v, d, (_, size) in zip(values, self.dtypes, self.spans, strict=True))


def snapshot(model, state: dict, optimizer=None, best_weights=None,
             layout: Layout | None = None) -> Archive:
    """The checkpoint of ``model`` as it is now: with a ``layout`` that still fits it, its
    values in that layout (cheap); otherwise ``model.save``'s file. The values are copies, so
    training may go on while the archive is written."""
    if layout is not None and layout.key == layout_key(model):
        values = [_value(v) for v in layout.variables]
        if layout.fits(values):
            keras_files = [(name, data) for name, data in layout.entries]
            keras_files[_index(keras_files, _WEIGHTS)] = (_WEIGHTS, Placed(layout, values))
            keras_files[_index(keras_files, _METADATA)] = (_METADATA, _metadata(layout))
            return _with_state(model, keras_files, state, optimizer, best_weights)
    with tempfile.TemporaryDirectory(prefix="labkit-checkpoint-") as folder:
        model.save(Path(folder) / "model.keras")
        with zipfile.ZipFile(Path(folder) / "model.keras") as archive:
            keras_files = [(name, archive.read(name)) for name in archive.namelist()]
    return _with_state(model, keras_files, state, optimizer, best_weights)


def _with_state(model, keras_files, state, optimizer, best_weights) -> Archive:
    entries = [*keras_files, (_STATE, json.dumps(state, default=files.jsonable).encode())]
    if optimizer is not None and optimizer is getattr(model, "optimizer", None):
        count = len(optimizer.variables)  # Keras stores them: no second copy
        entries.append((_OPTIMIZER_IN_WEIGHTS,
                        json.dumps({"group": _OPTIMIZER_GROUP, "count": count}).encode()))
    elif optimizer is not None:
        entries.append((_OPTIMIZER, Arrays([_value(v) for v in optimizer.variables])))
    if best_weights is not None:
        entries.append((_BEST_WEIGHTS, Arrays(list(best_weights))))
    return Archive(entries, state)


def layout_key(model) -> tuple:
    """What a :class:`Layout` of ``model`` depends on besides its variables' shapes: the
    model, its optimizer and the optimizer's config (a new learning rate is in config.json)."""
    optimizer = getattr(model, "optimizer", None)
    config = None
    if optimizer is not None:
        config = json.dumps(optimizer.get_config(), sort_keys=True, default=repr)
    return id(model), id(optimizer), len(getattr(optimizer, "variables", ()) or ()), config


def find_layout(model, archive: Archive) -> Layout | None:
    """Where each of ``model``'s variables lies in ``archive``'s weights file (Keras's file of
    ``model`` as it is now), or None when that cannot be known for certain: a value Keras
    stores that is not a variable's, a compressed or chunked dataset, a byte that differs. Uses
    Keras's own walk over the model (``saving_lib._save_state``), so the variables are the ones
    ``model.save`` stores, under the same names."""
    import h5py
    from keras.src.saving import saving_lib

    class Recorder(saving_lib.H5IOStore):
        """Notes what Keras would store, and where, instead of storing it."""

        def __init__(self) -> None:  # no file
            self.stored: list[tuple[str, object]] = []
            self.mode, self._at = "w", ""

        def __bool__(self) -> bool:
            return True

        def make(self, path, metadata=None):
            self._at = path
            return self

        def __setitem__(self, key, value):
            self.stored.append((f"{self._at}/vars/{key}" if self._at else f"vars/{key}", value))

    keras_files = [(n, d) for n, d in archive.entries if not n.startswith("labkit/")]
    try:
        weights = dict(keras_files)[_WEIGHTS]
        recorder = Recorder()
        saving_lib._save_state(model, weights_store=recorder, assets_store=None, inner_path="",
                               visited_saveables=set())
        variables = [_owner(model, path, value) for path, value in recorder.stored]
        if any(v is None for v in variables):
            return None
        spans, dtypes = [], []
        with h5py.File(io.BytesIO(weights), "r") as h5:
            datasets = []
            h5.visititems(lambda name, o: datasets.append(name) if isinstance(o, h5py.Dataset)
                          else None)
            if sorted(datasets) != sorted(path for path, _ in recorder.stored):
                return None
            for (path, _), variable in zip(recorder.stored, variables, strict=True):
                dataset, value = h5[path], _value(variable)
                offset = dataset.id.get_offset()
                if dataset.chunks is not None or dataset.compression is not None or \
                        offset is None or dataset.id.get_storage_size() != value.nbytes or \
                        weights[offset:offset + value.nbytes] != value.tobytes():
                    return None
                spans.append((offset, value.nbytes))
                dtypes.append(value.dtype)
    except (AttributeError, TypeError, ValueError, KeyError, OSError, RuntimeError):
        return None  # a Keras whose saving works otherwise: model.save every time
    return Layout(layout_key(model), keras_files, variables, spans, dtypes)


def _owner(model, path: str, value):
    """The Keras variable ``value`` (stored at ``path``) comes from: itself, or for an
    optimizer, which stores copies (``variable.numpy()``), its variable with that index."""
    import keras

    if isinstance(value, keras.Variable):
        return value
    owner, _, key = path.rpartition("/vars/")
    if owner == "optimizer" and key.isdigit():
        optimizer = getattr(model, "optimizer", None)
        variables = getattr(optimizer, "variables", [])
        if int(key) < len(variables):
            return variables[int(key)]
    return None


def _value(variable) -> np.ndarray:
    """A copy of ``variable``'s value on the host (a JAX buffer may be donated and reused)."""
    return np.array(variable.numpy(), copy=True)


def _metadata(layout: Layout) -> bytes:
    metadata = json.loads(dict(layout.entries)[_METADATA])
    if "date_saved" in metadata:  # as Keras writes it
        metadata["date_saved"] = dt.datetime.now().strftime("%Y-%m-%d@%H:%M:%S")
    return json.dumps(metadata).encode()


def _index(entries, name: str) -> int:
    return next(i for i, (n, _) in enumerate(entries) if n == name)


# Checkpoints from this size on are written in the background (Writer); measured on the 2-core
# CPU, JAX: a 0.5 MB checkpoint costs 5 ms more per epoch in the background than at once, a
# 25 MB one 20 ms less.
BACKGROUND_BYTES = 4 * 2**20


class Writer:
    """Writes a run's checkpoints (with the files :meth:`save` is given to put in place first)
    on a thread of its own, one at a time, in order.

    :meth:`save` waits for the previous checkpoint (raising its fault, if it had one), takes the
    values now and returns; the file is written meanwhile. A checkpoint smaller than
    ``background_bytes`` is written at once instead: a millisecond or two, which a thread would
    not save (its Python work competes with training's for the interpreter; measured in the
    README's speed section). ``state`` is the state of the last
    checkpoint written whole (None before the first); ``layout`` the :class:`Layout` later
    checkpoints are placed in (None: each is ``model.save``'s). :meth:`check` raises a fault
    without waiting, :meth:`wait` waits; a fault (a :class:`~labkit.files.FileFault`) is raised
    once.
    """

    def __init__(self, background_bytes: int = BACKGROUND_BYTES) -> None:
        self.background_bytes = background_bytes
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="labkit-checkpoint")
        self._pending: Future | None = None
        self.layout: Layout | None = None
        self.state: dict | None = None
        self._unplaced: tuple | None = None  # the layout key no layout could be found for

    def save(self, model, path: str | Path, state: dict, optimizer=None, best_weights=None,
             also: tuple[str | Path, ...] = (),
             before: tuple[tuple[str | Path, bytes], ...] = ()) -> None:
        """Checkpoint ``model`` to ``path`` (and to each of ``also``: best.keras); ``before``:
        files (path, content) put in place first, in one :class:`~labkit.files.Batch` with
        the checkpoint (the epoch's history and metrics)."""
        self.wait()
        archive = snapshot(model, state, optimizer, best_weights, self.layout)
        if not any(isinstance(data, Placed) for _, data in archive.entries) and \
                layout_key(model) != self._unplaced:
            self.layout = find_layout(model, archive)  # ~10 ms; then every save is cheap
            self._unplaced = layout_key(model) if self.layout is None else None
        if archive.size < self.background_bytes:
            self._write(archive, path, also, before)
        else:
            self._pending = self._pool.submit(self._write, archive, path, also, before)

    def _write(self, archive: Archive, path, also, before) -> None:
        with files.Batch() as batch:
            for name, data in before:
                batch.write(name, data)
            archive.add_to(batch, path, also)
        self.state = archive.state

    def check(self) -> None:
        """Raise the fault of a checkpoint that failed; never waits."""
        if self._pending is not None and self._pending.done():
            self.wait()

    def wait(self) -> None:
        """Until the checkpoint being written is on the disk; its fault is raised here. (An
        interrupt while waiting leaves it pending: :meth:`close` still waits for it.)"""
        if self._pending is not None:
            fault = self._pending.exception()
            self._pending = None
            if fault is not None:
                raise fault

    def close(self) -> None:
        """Wait for the last checkpoint (its fault is not raised: :meth:`wait` first for it)
        and stop the thread."""
        if self._pending is not None:
            self._pending.exception()
            self._pending = None
        self._pool.shutdown()


def read(path: str | Path) -> Checkpoint:
    """The labkit entries of a checkpoint written by :class:`Writer`; a LabkitError names a
    damaged file."""
    from labkit.errors import LabkitError

    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
            state = json.loads(archive.read(_STATE))
            optimizer = _unarrays(archive.read(_OPTIMIZER)) if _OPTIMIZER in names else []
            if _OPTIMIZER_IN_WEIGHTS in names:
                optimizer = _in_weights(archive.read(_WEIGHTS),
                                        json.loads(archive.read(_OPTIMIZER_IN_WEIGHTS)))
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


def _in_weights(weights: bytes, where: dict) -> list[np.ndarray]:
    """The optimizer's variables from Keras's weights file (``where``: their group, how many)."""
    import h5py

    with h5py.File(io.BytesIO(weights), "r") as h5:
        try:
            group = h5[where["group"]]
            return [np.asarray(group[str(i)][()]) for i in range(where["count"])]
        except KeyError:
            raise ValueError("its weights file lacks the optimizer's variables") from None


def _unarrays(data: bytes) -> list[np.ndarray]:
    with np.load(io.BytesIO(data), allow_pickle=False) as loaded:
        return [loaded[f"arr_{i}"] for i in range(len(loaded.files))]
