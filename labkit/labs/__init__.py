"""``labkit lab``: each claim of the lecture as a reproducible experiment.

``run("momentum", quick=True)`` trains real Keras models (or runs Keras's optimizers on a
function), writes ``<name>.csv`` (the numbers), ``<name>.png`` (the plot) and ``verdict.txt`` to
``labs/<name>/``, and returns the table and a one-line verdict computed from the CSV as written.
"""

from __future__ import annotations

import difflib
from pathlib import Path

import pandas as pd

from labkit.errors import LabkitError
from labkit.labs import convolution, deep, optimization, playground, regularization  # noqa: F401
from labkit.labs._kit import LABS, Lab

__all__ = ["LABS", "ORDER", "Lab", "get", "names", "output_dir", "run", "verdict_of"]


# The order, which follows the lecture: optimisation, deep nets, regularisation, CNNs.
ORDER = ("gd-vs-sgd", "learning-rate", "lr-schedule", "momentum", "vanishing-gradients",
         "initialization", "adaptive-optimizers", "weight-decay", "dropout", "early-stopping",
         "augmentation", "ensemble", "convolution", "padding-stride", "parameter-sharing",
         "transfer", "residual", "playground")


def names() -> list[str]:
    """Lab names in lecture order."""
    return [name for name in ORDER if name in LABS] + sorted(set(LABS) - set(ORDER))


def get(name: str) -> Lab:
    if name not in LABS:
        close = difflib.get_close_matches(name, LABS, n=3)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        raise LabkitError(f"Unknown lab {name!r}.{hint} See `labkit lab list`.")
    return LABS[name]


def run(name: str, quick: bool = False, out: str | Path | None = None,
        seed: int = 0) -> tuple[pd.DataFrame, str]:
    """Run lab ``name``; write its CSV, PNG and verdict to ``out`` (default ``labs/<name>``).

    Returns:
        ``(frame, verdict)``: the numbers as written to the CSV, and the verdict computed from
        them.
    """
    from labkit import runs

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
    runs.write_text(csv, measured.to_csv(index=False))
    frame = pd.read_csv(csv)  # verdict and plot see exactly what the CSV holds
    verdict = verdict_of(name, frame)
    lab.plot(frame, out / f"{name}.png")
    runs.write_text(out / "verdict.txt", verdict + "\n")
    return frame, verdict


def output_dir(name: str, out: str | Path | None = None) -> Path:
    """Where lab ``name`` writes: ``out``, or ``labs/<name>`` by default."""
    return Path(out) if out is not None else Path("labs") / name


def verdict_of(name: str, frame: pd.DataFrame) -> str:
    """Lab ``name``'s verdict for a table of its numbers (e.g. read back from its CSV)."""
    return f"{name}: {get(name).verdict(frame)}"
