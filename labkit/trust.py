"""Model files from someone else: read as data, checked before Keras deserialises anything.

Every ``.keras`` file labkit opens (a run's model and checkpoints, a ``transfer`` base, an export
being verified) goes through :func:`load_keras`:

1. Keras must be at least :data:`MIN_KERAS`: older releases have known ways around
   ``safe_mode`` (:data:`ADVISORIES`), and a model is not loaded under them.
2. The archive's ``config.json`` is read as JSON and walked: a ``Lambda`` layer (it carries
   Python bytecode), a ``TFSMLayer`` (it loads a SavedModel's graph), or any object from a module
   that is neither Keras's nor labkit's own custom layers is refused, naming what and where.
3. Only then ``keras.models.load_model(..., safe_mode=True)`` with labkit's custom layers.
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

from labkit.errors import LabkitError

MIN_KERAS = (3, 15, 1)
ADVISORIES = ("CVE-2025-1550 (fixed in Keras 3.9), CVE-2025-8747 and CVE-2025-9906 (3.11), "
              "CVE-2025-9905 (3.11.3), CVE-2026-1462 (3.14), CVE-2026-12481 and the HDF5 link, "
              "virtual-dataset, archive-size and symlink fixes (3.15)")
REFUSED = {
    "Lambda": "a Lambda layer, which carries Python code",
    "__lambda__": "a serialised Python function",
    "TFSMLayer": "a TFSMLayer, which loads an external TensorFlow SavedModel",
}
OWN_PACKAGE = "labkit"  # labkit.layers registers its objects as labkit>NAME
# Modules whose objects a model file may name: labkit's own (runs made before they moved into
# the library name recipes._layers; the classes are the same, registered under the same names).
OWN_MODULES = ("labkit.layers", "recipes._layers")
MAX_CONFIG_BYTES = 64 * 2**20


def keras_version_ok(version: str) -> bool:
    """Whether Keras ``version`` (``3.15.1``, ``3.16.0.dev2026``) is at least
    :data:`MIN_KERAS`."""
    parts = []
    for piece in version.split(".")[:len(MIN_KERAS)]:
        digits = "".join(c for c in piece if c.isdigit())
        parts.append(int(digits or 0))
    return tuple(parts) >= MIN_KERAS


def check_keras() -> None:
    """A LabkitError under a Keras with known ``safe_mode`` bypasses."""
    import keras

    if not keras_version_ok(keras.__version__):
        wanted = ".".join(map(str, MIN_KERAS))
        raise LabkitError(f"Keras {keras.__version__} has known ways to run code from a model "
                          f"file ({ADVISORIES}); labkit loads models only with Keras >= "
                          f"{wanted}. Upgrade: pip install -U 'keras>={wanted}'")


# A weights file may declare at most this many times the data of the model it is loaded into.
WEIGHTS_FACTOR = 2


def check_weights_file(path: str | os.PathLike, model) -> None:
    """Refuse, with one LabkitError naming the file and the reason, an HDF5 weights file (a
    VGG16 notop ``.h5``, any ``.weights.h5``) that is not plain data for ``model``: an
    external link (a read of another file), a soft link, a virtual dataset (data mapped from
    other files), a dataset whose shape is none of the model's variables', or more declared
    data than :data:`WEIGHTS_FACTOR` times the model's (a shape bomb). Links are looked at,
    never followed, so nothing outside the file is read. Keras 3.15 refuses links and virtual
    datasets itself; this check names them before Keras reads anything, on any Keras."""
    import h5py
    import numpy as np

    path = Path(path)
    shapes = {tuple(v.shape) for v in model.weights}
    own = sum(int(np.prod(v.shape)) * 4 for v in model.weights)  # float32 bytes
    declared = 0

    def refuse(reason: str) -> None:
        raise LabkitError(f"{path} is refused as a weights file: {reason}. A weights file "
                          "holds only the model's own arrays.")

    def walk(group, prefix: str) -> None:
        nonlocal declared
        for name in group:
            where = f"{prefix}/{name}"
            link = group.get(name, getlink=True)
            if isinstance(link, h5py.ExternalLink):
                refuse(f"{where} is a link to {link.filename!r}, another file")
            if isinstance(link, h5py.SoftLink):
                refuse(f"{where} is a soft link (to {link.path})")
            item = group[name]
            if isinstance(item, h5py.Group):
                walk(item, where)
            elif isinstance(item, h5py.Dataset):
                if item.is_virtual:
                    refuse(f"{where} is a virtual dataset, mapped from other files")
                if tuple(item.shape) not in shapes:
                    refuse(f"{where} has shape {tuple(item.shape)}, which no variable of the "
                           "model has")
                declared += int(np.prod(item.shape, dtype=np.float64)) * item.dtype.itemsize
                if declared > WEIGHTS_FACTOR * own:
                    refuse(f"it declares over {declared / 2**20:.0f} MB of weights, the model "
                           f"holds {own / 2**20:.0f} MB")

    try:
        handle = h5py.File(path, "r")
    except OSError as err:
        raise LabkitError(f"{path} is not a readable HDF5 weights file ({err}).") from None
    with handle:
        walk(handle, "")


def _trusted_module(module: str | None) -> bool:
    return module is None or module == "keras" or module.startswith("keras.") or \
        module in OWN_MODULES


def untrusted_parts(config) -> list[str]:
    """What in a model's config (as ``config.json`` holds it) labkit refuses to load, each as
    ``"what at path"``; empty when nothing is."""
    found: list[str] = []

    def walk(node, where: str) -> None:
        if isinstance(node, list):
            for value in node:
                walk(value, where)
            return
        if not isinstance(node, dict):
            return
        name = node.get("class_name")
        if isinstance(name, str):
            inner = node.get("config")
            label = (inner.get("name") if isinstance(inner, dict) else None) or name
            where = f"{where}/{label}"
            module, registered = node.get("module"), node.get("registered_name")
            if name in REFUSED:
                found.append(f"{REFUSED[name]} at {where}")
            elif module is not None and not (isinstance(module, str) and
                                             _trusted_module(module)):
                found.append(f"an object from module {module!r} at {where}")
            elif isinstance(registered, str) and ">" in registered and \
                    registered.split(">", 1)[0] != OWN_PACKAGE:
                found.append(f"a custom object {registered!r} at {where}")
        for value in node.values():
            walk(value, where)

    walk(config, "")
    return list(dict.fromkeys(found))


def read_config(path: Path) -> dict:
    """The ``config.json`` inside a ``.keras`` archive, as data; a LabkitError for a file that
    is not a whole ``.keras`` archive."""
    try:
        with zipfile.ZipFile(path) as archive:
            info = archive.getinfo("config.json")
            if info.file_size > MAX_CONFIG_BYTES:
                raise LabkitError(f"{path}: its config.json is {info.file_size} bytes; a model "
                                  "config is far smaller. The file is not trusted.")
            return json.loads(archive.read(info))
    except LabkitError:
        raise
    except KeyError:
        raise LabkitError(f"{path} is not a Keras model file (no config.json inside).") from None
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as err:
        raise LabkitError(f"{path} is damaged or not a Keras model file ({err}); it may have "
                          "been cut short by a full disk or an interrupted copy.") from None


def load_keras(path: str | os.PathLike, compile: bool = True):
    """The model in the ``.keras`` file at ``path``, loaded only if nothing in it can run code
    (see the module's description); a LabkitError says why a file is refused."""
    import keras

    check_keras()
    path = Path(path)
    problems = untrusted_parts(read_config(path))
    if problems:
        raise LabkitError(f"{path} is not trusted: it contains {'; '.join(problems)}. labkit "
                          "loads only models made of Keras's own layers and labkit's.")
    import labkit.layers  # noqa: F401  registers labkit's own objects for loading

    try:
        return keras.models.load_model(path, compile=compile, safe_mode=True)
    except Exception as err:  # Keras raises ValueError, OSError, zipfile errors…
        message = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise LabkitError(f"{path} is not a readable Keras model file: {message}") from None


MAX_NPZ_BYTES = 8 * 2**30  # an .npz dataset or predict input, unpacked
MAX_SAMPLES_BYTES = 2**30  # a run's samples.npz (256 examples)


def load_npz(path: str | os.PathLike, limit: int = MAX_NPZ_BYTES) -> dict:
    """The arrays of an ``.npz`` file, read without pickle (object arrays are refused) and only
    if they unpack to at most ``limit`` bytes (the archive's own table says, before reading)."""
    import numpy as np

    path = Path(path)
    try:
        with zipfile.ZipFile(path) as archive:
            unpacked = sum(info.file_size for info in archive.infolist())
    except (zipfile.BadZipFile, OSError) as err:
        raise LabkitError(f"{path} is not a readable .npz file: {err}") from None
    if unpacked > limit:
        raise LabkitError(f"{path} unpacks to {unpacked / 2**30:.1f} GiB, over labkit's limit "
                          f"of {limit / 2**30:.0f} GiB for this file; it is not read.")
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {key: archive[key] for key in archive.files}
    except ValueError as err:
        if "allow_pickle" in str(err):
            raise LabkitError(f"{path} holds Python objects (pickled arrays), which could run "
                              "code when read; labkit reads only plain numeric arrays.") from None
        raise LabkitError(f"{path} is not a readable .npz file: {err}") from None
    except (OSError, EOFError) as err:
        raise LabkitError(f"{path} is not a readable .npz file: {err}") from None
