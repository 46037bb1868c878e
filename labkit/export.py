"""``labkit export``: a run's model as ``.keras`` or SavedModel, reloaded and checked."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from labkit import files, runs
from labkit.config import TrainConfig
from labkit.data import pipeline
from labkit.errors import LabkitError

FORMATS = ("keras", "savedmodel")
CHECK_BATCH = 64  # examples compared between the trained model and the reloaded export
TOLERANCE = 1e-5


def default_output(run: runs.Run, fmt: str) -> Path:
    return run.path / "export" / ("model.keras" if fmt == "keras" else "savedmodel")


def export(run_path, fmt: str, output: str | None = None) -> dict:
    """Write the run's model in ``fmt`` to ``output``, reload it and compare its predictions with
    the trained model's on a batch of the run's data. A mismatch removes the export and fails.

    Returns ``{"path", "format", "max_abs_diff", "examples"}``.
    """
    if fmt not in FORMATS:
        raise LabkitError(f"--format must be one of {', '.join(FORMATS)}. Received: {fmt!r}")
    run = runs.open_run(run_path)
    model = runs.load_model(run)
    path = Path(output) if output else default_output(run, fmt)
    if fmt == "keras" and path.suffix != ".keras":
        raise LabkitError(f"A Keras export needs a .keras file name. Received: {str(path)!r}")
    loaded = TrainConfig.from_dict(run.config).load_data()
    x, _ = pipeline.arrays(loaded.test if loaded.test is not None else loaded.train,
                           prep=None if runs.takes_raw_inputs(run) else loaded.spec.preprocessing)
    x = x[:CHECK_BATCH]
    expected = model.predict(x, verbose=0)

    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "keras":
        with files.atomic_path(path) as tmp:
            model.save(tmp)
        got = _reload_keras(path)(x)
    else:
        _write_savedmodel(model, path)
        got = _reload_savedmodel(path)(x)
    got = np.asarray(got)
    diff = float(np.max(np.abs(got - expected))) if got.shape == expected.shape else np.inf
    if not diff <= TOLERANCE:
        _remove(path)
        raise LabkitError(f"The reloaded export disagrees with the trained model "
                          f"(max |difference| {diff:.3g} > {TOLERANCE}); nothing was exported.")
    return {"path": str(path), "format": fmt, "max_abs_diff": diff, "examples": len(x)}


def _reload_keras(path: Path):
    import keras

    reloaded = keras.models.load_model(path)
    return lambda x: reloaded.predict(x, verbose=0)


def _write_savedmodel(model, path: Path) -> None:
    """``model.export`` to a temporary folder, then swap it in: a kill leaves no half export."""
    tmp = path.with_name(f".{path.name}.tmp")
    _remove(tmp)
    try:
        model.export(str(tmp), format="tf_saved_model", verbose=False)
    except Exception as err:
        _remove(tmp)
        raise LabkitError(f"SavedModel export failed: {str(err).splitlines()[0]}") from None
    _remove(path)
    tmp.rename(path)


def _reload_savedmodel(path: Path):
    import tensorflow as tf

    reloaded = tf.saved_model.load(str(path))  # must stay referenced: it owns the variables
    return lambda x: reloaded.serve(tf.constant(x)).numpy()


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()
