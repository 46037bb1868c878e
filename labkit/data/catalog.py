"""The dataset catalog: every name labkit knows, what it is, and which source loads it.

Listing and describing read only this table (no data is loaded, no TensorFlow imported);
:func:`load` hands a name to its source module's ``load`` (``bundled``, ``playground_sets``,
``control_charts``, ``tfds``). A new source is a module with a ``load`` and rows here.

A dataset given by path goes to its source by what it is (:data:`PATH_SOURCES`): a folder of
images (:mod:`~labkit.data.images`), a ``.csv`` (:mod:`~labkit.data.table`) or an ``.npz``
(:mod:`~labkit.data.npz`); each has ``OPTIONS``, ``spec(name, options)`` (read without
TensorFlow) and ``load(name, validation_split, **options)``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from labkit._lazy import lazy_import
from labkit.data import (
    bundled,
    control_charts,
    images,
    npz,
    pipeline,
    playground_sets,
    table,
    tfds,
)
from labkit.data.base import (
    CSV,
    FOLDER,
    NPZ,
    Data,
    DatasetSpec,
    as_regression,
    numbered_classes,
    path_kind,
    with_target_statistics,
)
from labkit.errors import LabkitError
from labkit.options import did_you_mean

np = lazy_import("numpy")  # imported on first use: listing commands never pay for it


@dataclass(frozen=True)
class Entry:
    """A row of :data:`DATASETS`."""

    source: str  # "bundled", "generated" or "tfds", as `labkit data` shows it
    input_shape: tuple[int, ...]
    num_classes: int
    description: str
    load: Callable[..., Data]  # the source's load(name, validation_split, ...)
    options: tuple[str, ...] = ()  # generator options `--data-option` may set
    task: str = "classification"


def _playground(description: str, task: str = "classification") -> Entry:
    return Entry("generated", (2,), 2 if task == "classification" else 1,
                 f"TensorFlow Playground: {description}", playground_sets.load,
                 ("noise", "num_samples", "seed", "ratio"), task)


def _tfds(input_shape: tuple[int, ...], description: str) -> Entry:
    return Entry("tfds", input_shape, 10, description, tfds.load)


DATASETS = {
    "digits": Entry("bundled", (8, 8, 1), 10,
                    "8x8 handwritten digits bundled with scikit-learn (1 797 images)",
                    bundled.load),
    "circle": _playground("a disc inside a ring"),
    "xor": _playground("quadrants, label = sign(x1 * x2)"),
    "gauss": _playground("two Gaussian blobs"),
    "spiral": _playground("two interleaved spirals"),
    "plane": _playground("regression, target (x1 + x2) / 10", "regression"),
    "multi-gauss": _playground("regression, six signed Gaussian bumps", "regression"),
    "control_charts": Entry("generated", (60, 1), 6,
                            "synthetic control-chart time series: 6 patterns (1 200 series)",
                            control_charts.load),
    "mnist": _tfds((28, 28, 1), "28x28 grey handwritten digits (70 000 images)"),
    "fashion_mnist": _tfds((28, 28, 1), "28x28 grey clothing images (70 000 images)"),
    "cifar10": _tfds((32, 32, 3), "32x32 colour images of 10 objects (60 000 images)"),
}
PLAYGROUND_NAMES = (*playground_sets.GENERATORS, *playground_sets.REGRESSION)
OFFLINE = tuple(n for n, entry in DATASETS.items() if entry.source != "tfds")


PATH_SOURCES = {"images": images, "csv": table, "npz": npz}  # `labkit data` shows the key


def path_source(name: str) -> str | None:
    """Which of :data:`PATH_SOURCES` reads ``name`` (None: not a path); a path that does not
    exist is a LabkitError."""
    if name in DATASETS or tfds.is_tfds_name(name):
        return None
    kind = path_kind(name)
    if kind is not None:
        return {FOLDER: "images", CSV: "csv", NPZ: "npz"}[kind]
    if "/" in name or Path(name).exists():
        what = "is not a folder, .csv or .npz file" if Path(name).exists() else "does not exist"
        raise LabkitError(f"Dataset path {name!r} {what}.")
    return None


def check_name(name: str) -> Entry:
    """The catalog entry of ``name``; an unknown name is a :class:`LabkitError` with close
    matches."""
    if name not in DATASETS:
        raise LabkitError(f"Unknown dataset {name!r}.{did_you_mean(name, DATASETS)} "
                          f"Known: {', '.join(DATASETS)}, a path to an image folder, a .csv or "
                          ".npz file, or tfds:NAME.")
    return DATASETS[name]


def catalog_spec(name: str, options: dict | None = None) -> DatasetSpec:
    """The spec of dataset ``name``: from the catalog without loading anything, or read from
    the files of a path dataset (headers, not decoded images). Checks ``options``."""
    options = dict(options or {})
    source = _source(name, options)
    if source is not None:
        return source.spec(name, options)
    if tfds.is_tfds_name(name):
        return tfds.spec_of(name, tfds.builder_for(name), image_size=options.get("image_size"))
    entry = check_name(name)
    return DatasetSpec(name, entry.input_shape, entry.num_classes, task=entry.task)


def _source(name: str, options: dict) -> ModuleType | None:
    """The path source of ``name`` (None for a catalog or TFDS name) once ``options`` are
    checked against what that dataset takes."""
    kind = path_source(name)
    source = PATH_SOURCES[kind] if kind else None
    if source is not None:
        allowed = source.OPTIONS
    elif tfds.is_tfds_name(name) or (name in DATASETS and DATASETS[name].source == "tfds"):
        allowed = tfds.OPTIONS
    else:
        allowed = check_name(name).options  # only generated sets take options
    if options and not allowed:
        raise LabkitError(f"Dataset {name!r} takes no options. Received: {options}")
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise LabkitError(f"Dataset {name!r} has no option {', '.join(map(repr, unknown))}. "
                          f"Known: {', '.join(allowed)}.")
    return source


def load(name: str, *, validation_split: float = 0.2, data_dir: str | None = None,
         options: dict | None = None, task: str | None = None) -> Data:
    """Load dataset ``name`` with a validation split carved from its training data.

    Args:
        name: one of :data:`DATASETS`, a path to an image folder, a ``.csv`` or ``.npz`` file
            (:data:`PATH_SOURCES`), or ``tfds:NAME`` (:mod:`labkit.data.tfds`).
        validation_split: fraction of the training data held out for validation.
        data_dir: TFDS data directory (default: ``$TFDS_DATA_DIR`` or TFDS's own).
        options: the dataset's options: the Playground sets' ``noise`` (0–0.5),
            ``num_samples``, ``seed``, ``ratio`` (percent for training, 10–90); an image
            folder's ``image_size``, ``color_mode``, …
            (:mod:`~labkit.data.images`); a CSV's ``target`` and ``dropna``.
        task: the task it is trained for when that is not the dataset's own (a run's
            ``--task``: binary for two classes, say, or regression on numbered classes;
            checked by the config); None: its own.
    """
    options = dict(options or {})
    source = _source(name, options)
    entry = DATASETS.get(name)
    if source is not None:
        loaded = source.load(name, validation_split, **options)
    elif entry is None or entry.source == "tfds":
        loaded = tfds.load(name, validation_split, data_dir=data_dir, offline_names=OFFLINE,
                           task=entry.task if entry else None, **options)
    else:
        loaded = entry.load(name, validation_split, **options)
    if task == "regression" and numbered_classes(loaded.spec):
        loaded = as_regression(loaded)
    elif task and task != loaded.spec.task:
        loaded.spec = dataclasses.replace(loaded.spec, task=task)
    return with_target_statistics(loaded)


def summarize(name: str, validation_split: float = 0.2, options: dict | None = None) -> dict:
    """What ``labkit data PATH`` shows of a path dataset: source, task, input shape, and per
    split its size and class (or label) counts, and what loading skipped. Loads the data."""
    kind = path_source(name)
    if kind is None:
        check_name(name)
        raise LabkitError(f"`labkit data NAME` describes path datasets; {name!r} is in the "
                          "catalog: run `labkit data` to list it.")
    loaded = load(name, validation_split=validation_split, options=options)
    spec = loaded.spec
    splits = {}
    for split_name in ("train", "val", "test"):
        part = getattr(loaded, split_name)
        if part is None:
            continue
        y = part[1] if isinstance(part, tuple) else pipeline.labels(part)
        counts = None
        if spec.task in ("classification", "binary"):
            counts = np.bincount(y, minlength=spec.num_classes).tolist()
        elif spec.task == "multilabel":
            counts = y.sum(axis=0).astype(int).tolist()
        splits[split_name] = {"examples": len(y), "counts": counts}
    return {"name": name, "source": kind, "task": spec.task, "input_shape": spec.input_shape,
            "num_classes": spec.num_classes, "class_names": list(spec.class_names),
            "scale": spec.scale, "standardised": spec.mean is not None, "splits": splits,
            "notes": list(loaded.notes)}


def render_summary(info: dict) -> str:
    """:func:`summarize`'s result as ``labkit data PATH`` prints it."""
    unit = {"regression": "target(s)", "multilabel": "labels"}.get(info["task"], "classes")
    scaled = f", values divided by {info['scale']:g} in the model" if info["scale"] != 1 else ""
    if info.get("standardised"):
        scaled = ", features standardised in the model"
    lines = [f"{info['name']}: {info['source']}, task {info['task']}, input shape "
             f"{info['input_shape']}, {info['num_classes']} {unit}{scaled}"]
    names = info["class_names"] or [str(i) for i in range(info["num_classes"])]
    for split, part in info["splits"].items():
        counts = "" if part["counts"] is None else "  " + ", ".join(
            f"{n}: {c}" for n, c in zip(names, part["counts"], strict=True))
        lines.append(f"  {split:<6} {part['examples']:>7} examples{counts}")
    lines += [f"  note: {note}" for note in info.get("notes", ())]
    return "\n".join(lines)
