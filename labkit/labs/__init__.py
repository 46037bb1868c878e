"""``labkit lab``: each claim of the lecture as a reproducible experiment.

``run("momentum", quick=True)`` trains real Keras models (or runs Keras's optimizers on a
function), writes ``<name>.csv`` (the numbers), ``<name>.png`` (the plot) and ``verdict.txt`` to
``labs/<name>/``, and returns the table and a one-line verdict computed from the CSV as written.

Every module of this package registers its labs with ``@lab(...)`` (see ``_kit.py``) when it is
imported; importing the package imports them all.
"""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path

from labkit import files, lecture
from labkit._lazy import lazy_import
from labkit.errors import LabkitError
from labkit.labs._kit import LABS, Lab
from labkit.options import did_you_mean

pd = lazy_import("pandas")

__all__ = ["DEFAULT_SEED", "LABS", "Lab", "get", "names", "output_dir", "run", "verdict_of"]

DEFAULT_SEED = lecture.LAB_SEED

for _module in pkgutil.iter_modules(__path__):
    if not _module.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_module.name}")


def names() -> list[str]:
    """Lab names in the order they declare (the lecture's)."""
    return sorted(LABS, key=lambda name: LABS[name].order)


def get(name: str) -> Lab:
    if name not in LABS:
        raise LabkitError(f"Unknown lab {name!r}.{did_you_mean(name, LABS)} "
                          "See `labkit lab list`.")
    return LABS[name]


def run(name: str, quick: bool = False, out: str | Path | None = None,
        seed: int = DEFAULT_SEED) -> tuple[pd.DataFrame, str]:
    """Run lab ``name``; write its CSV, PNG and verdict to ``out`` (default ``labs/<name>``).

    Returns:
        ``(frame, verdict)``: the numbers as written to the CSV, and the verdict computed from
        them.
    """
    lab = get(name)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise LabkitError(f"--seed must be an integer >= 0. Received: {seed!r}")
    out = output_dir(name, out)
    if out.exists() and not out.is_dir():
        raise LabkitError(f"--out {str(out)!r} is a file, not a folder.")
    import keras

    keras.utils.set_random_seed(seed)
    measured = lab.measure(quick, seed)
    out.mkdir(parents=True, exist_ok=True)
    csv = out / f"{name}.csv"
    files.write_text(csv, measured.to_csv(index=False))
    frame = pd.read_csv(csv)  # verdict and plot see exactly what the CSV holds
    verdict = verdict_of(name, frame)
    lab.plot(frame, out / f"{name}.png")
    files.write_text(out / "verdict.txt", verdict + "\n")
    return frame, verdict


def output_dir(name: str, out: str | Path | None = None) -> Path:
    """Where lab ``name`` writes: ``out``, or ``labs/<name>`` by default."""
    return Path(out) if out is not None else Path("labs") / name


def verdict_of(name: str, frame: pd.DataFrame) -> str:
    """Lab ``name``'s verdict for a table of its numbers (e.g. read back from its CSV)."""
    return f"{name}: {get(name).verdict(frame)}"
