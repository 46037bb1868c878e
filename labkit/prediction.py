"""``labkit predict``: a run's answers on new inputs, read as its training read its data.

Inputs are image files, folders (searched recursively), globs, a ``.csv`` (the run's feature
columns, found by name) or an ``.npz`` (``x``, else ``x_test``). Images are decoded and resized
by :func:`labkit.data.images.decode` with the run's image size, colour mode and interpolation.
Inputs go through the model in batches of :data:`BATCH`, so a folder of any size runs in
constant memory. The answer is a pandas DataFrame, a row per input:

- classification and binary: ``class`` and ``probability`` (``top`` > 1: ``class_2``,
  ``probability_2``, …);
- multilabel: ``labels`` (those at or over ``threshold``, joined by ``;``) and a probability
  column per label;
- regression: ``value`` (or ``value_<target>`` per target).
"""

from __future__ import annotations

import glob
from collections.abc import Callable, Iterator
from pathlib import Path

from labkit import ranges, runs
from labkit._lazy import lazy_import
from labkit.data import images
from labkit.data.base import CSV, NPZ, path_kind
from labkit.errors import LabkitError

np = lazy_import("numpy")
pd = lazy_import("pandas")

BATCH = 256  # inputs decoded and predicted at a time


def predict(run, inputs, *, model: str = "final", top: int = 1, threshold: float = 0.5,
            skip_bad: bool = False, progress: Callable[[int], None] | None = None,
            notes: list[str] | None = None, warn: Callable[[str], None] = ranges.warn):
    """The run's predictions on ``inputs`` (paths, folders, globs, a CSV or an npz; one or a
    list) as a DataFrame. ``progress(n)`` is called after each batch of ``n`` inputs;
    ``notes`` collects what was skipped or converted; ``warn`` is told once when inputs fall
    clearly outside the range the run was trained on (:func:`labkit.ranges.outside`).

    Raises:
        LabkitError: an input that cannot be read, a CSV without the run's feature columns, a
            run without the chosen model.
    """
    run = runs.open_run(run) if not isinstance(run, runs.Run) else run
    if isinstance(top, bool) or not isinstance(top, int) or top < 1:
        raise LabkitError(f"--top must be an integer >= 1. Received: {top!r}")
    if not 0 < threshold < 1:
        raise LabkitError(f"--threshold must be in (0, 1). Received: {threshold!r}")
    spec = run.spec
    keras_model = runs.inference_model(run, model)
    sources = [inputs] if isinstance(inputs, (str, Path)) else list(inputs)
    if not sources:
        raise LabkitError("Name at least one INPUT: image files, a folder, a glob, a .csv or an "
                          ".npz.")
    notes = notes if notes is not None else []
    frames, warned = [], False
    for names, x in batches(run, spec, sources, skip_bad=skip_bad, notes=notes):
        warning = None if warned else ranges.outside(run.input_range, x, run.config["dataset"])
        if warning:
            warn(warning)
            warned = True
        outputs = keras_model.predict(x, batch_size=BATCH, verbose=0)
        frames.append(answers(spec, names, outputs, top=top, threshold=threshold))
        if progress:
            progress(len(names))
    if not frames:
        raise LabkitError("None of the inputs could be read.")
    return pd.concat(frames, ignore_index=True)


def batches(run, spec, sources: list, *, skip_bad: bool,
            notes: list[str]) -> Iterator[tuple[list[str], object]]:
    """``(names, raw inputs)`` in batches of :data:`BATCH`, from every source in turn."""
    pictures = image_sources(sources)
    tables = [s for s in sources if s not in pictures]
    for source in tables:
        yield from (_csv(run, spec, source) if path_kind(source) == CSV
                    else _npz(spec, source))
    if pictures:
        yield from _images(run, spec, image_paths(pictures), skip_bad=skip_bad, notes=notes)


def image_sources(sources: list) -> list:
    """The ``sources`` that name images: files, folders and globs, all but .csv and .npz
    files (:func:`labkit.data.base.path_kind`)."""
    return [s for s in sources if path_kind(s) not in (CSV, NPZ)]


def image_paths(sources: list) -> list[Path]:
    """Image files of ``sources``: files as given, folders searched recursively, globs
    expanded; a source that names nothing is a LabkitError."""
    found: list[Path] = []
    for source in map(str, sources):
        path = Path(source)
        if path.is_dir():
            inside = sorted(p for p in path.rglob("*") if p.is_file()
                            and p.suffix.lower() in images.EXTENSIONS
                            and not p.name.startswith("."))
            if not inside:
                raise LabkitError(f"Folder {source!r} holds no image files "
                                  f"({', '.join(images.EXTENSIONS)}).")
            found += inside
        elif path.is_file():
            found.append(path)
        elif any(c in source for c in "*?["):
            matched = sorted(Path(p) for p in glob.glob(source, recursive=True)
                             if Path(p).is_file())
            if not matched:
                raise LabkitError(f"No file matches {source!r}.")
            found += matched
        else:
            raise LabkitError(f"Input {source!r} does not exist.")
    return found


def read_images(run, spec, sources: list, *, skip_bad: bool = False,
                notes: list[str] | None = None):
    """``(names, raw inputs)`` of ``sources`` (image files, folders, globs, an .npz), read as
    :func:`predict` reads them, all at once (for a handful of images)."""
    names, parts = [], []
    for batch_names, x in batches(run, spec, list(sources), skip_bad=skip_bad,
                                  notes=notes if notes is not None else []):
        names += batch_names
        parts.append(x)
    return names, np.concatenate(parts)


def _images(run, spec, paths: list[Path], *, skip_bad: bool, notes: list[str]):
    if len(spec.input_shape) != 3:
        raise LabkitError(f"{run.path} was trained on inputs of shape {spec.input_shape}, not "
                          "images; give it a .csv or an .npz.")
    height, width, channels = spec.input_shape
    options = run.config.get("data_options", {})
    settings = images.Settings((height, width), "grayscale" if channels == 1 else "rgb",
                               options.get("interpolation", "bilinear"))
    other = images.channel_mismatch(paths, channels)
    if other:
        notes.append(f"{other} image(s) converted to {settings.color_mode}, as in training")
    bad = 0
    for start in range(0, len(paths), BATCH):
        chunk = paths[start:start + BATCH]
        x, failed = images.decode(chunk, settings)
        if failed and not skip_bad:
            raise LabkitError(f"{failed[0]} is not an image that can be decoded; remove it or "
                              "pass --skip-bad to skip such files.")
        bad += len(failed)
        kept = [str(p) for p in chunk if p not in set(failed)]
        if kept:
            yield kept, x
    if bad:
        notes.append(f"{bad} file(s) that are not decodable images skipped")


def _csv(run, spec, source):
    features = list(spec.feature_names)
    if not features:
        raise LabkitError(f"{run.path} was not trained on a CSV; give it what it was trained on "
                          f"(inputs of shape {spec.input_shape}).")
    try:
        header = pd.read_csv(source, nrows=0).columns
    except (OSError, ValueError) as err:
        raise LabkitError(f"Cannot read {source}: {str(err).splitlines()[0]}") from None
    missing = [f for f in features if f not in header]
    if missing:
        raise LabkitError(f"{source} lacks the feature column(s) {', '.join(missing)} the run "
                          "was trained on.")
    offset = 0
    for chunk in pd.read_csv(source, usecols=features, chunksize=BATCH):
        values = chunk[features]
        holes = values.isna().sum()
        if holes.any():
            raise LabkitError(f"{source} has missing values in "
                              f"{', '.join(map(repr, holes[holes > 0].index))}.")
        names = [f"{source}:{offset + i + 2}" for i in range(len(chunk))]  # line in the file
        offset += len(chunk)
        yield names, values.to_numpy("float32")


def _npz(spec, source):
    from labkit.trust import load_npz

    archive = load_npz(source)
    key = next((k for k in ("x", "x_test") if k in archive), None)
    if key is None:
        raise LabkitError(f"{source} holds no x (or x_test) array to predict on.")
    x = archive[key]
    x = x.reshape((len(x), *spec.input_shape)) if x.shape[1:] != spec.input_shape and \
        x.size == len(x) * int(np.prod(spec.input_shape)) else x
    if x.shape[1:] != spec.input_shape:
        raise LabkitError(f"{source}: {key} has shape {x.shape[1:]} per example; the run takes "
                          f"{spec.input_shape}.")
    for start in range(0, len(x), BATCH):
        part = x[start:start + BATCH]
        yield [f"{source}[{start + i}]" for i in range(len(part))], part


def answers(spec, names: list[str], outputs, *, top: int = 1, threshold: float = 0.5):
    """The rows of :func:`predict` for one batch of model ``outputs``."""
    frame = pd.DataFrame({"input": names})
    task = spec.task
    if task == "regression":
        if outputs.shape[1] == 1:
            frame["value"] = outputs[:, 0]
        else:
            for i in range(outputs.shape[1]):
                frame[f"value_{i}"] = outputs[:, i]
        return frame
    labels = list(spec.class_names) or [str(i) for i in range(spec.num_classes)]
    if task == "multilabel":
        frame["labels"] = [";".join(n for n, p in zip(labels, row, strict=True) if p >= threshold)
                           for row in outputs]
        for i, name in enumerate(labels):
            frame[f"probability_{name}"] = outputs[:, i]
        return frame
    probabilities = np.concatenate([1 - outputs, outputs], axis=1) if task == "binary" \
        else outputs
    order = np.argsort(-probabilities, axis=1)[:, :top]
    for k in range(order.shape[1]):
        suffix = "" if k == 0 else f"_{k + 1}"
        frame[f"class{suffix}"] = [labels[i] for i in order[:, k]]
        frame[f"probability{suffix}"] = probabilities[np.arange(len(order)), order[:, k]]
    return frame
