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
from labkit.labs._kit import HOLDS, LABS, NOT_SHOWN, Lab
from labkit.options import did_you_mean

pd = lazy_import("pandas")

__all__ = ["DEFAULT_SEED", "LABS", "Lab", "combined_verdict", "get", "names", "output_dir",
           "parse_seeds", "run", "run_seeds", "supported", "verdict_of"]

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
    verdict = verdict_of(name, frame, quick)
    lab.plot(frame, out / f"{name}.png")
    files.write_text(out / "verdict.txt", verdict + "\n")
    return frame, verdict


def output_dir(name: str, out: str | Path | None = None) -> Path:
    """Where lab ``name`` writes: ``out``, or ``labs/<name>`` by default."""
    return Path(out) if out is not None else Path("labs") / name


def verdict_of(name: str, frame: pd.DataFrame, quick: bool = False) -> str:
    """Lab ``name``'s verdict for a table of its numbers (e.g. read back from its CSV). A
    ``quick`` run's numbers that do not show the claim are "inconclusive at this size": a few
    seconds of training cannot contradict the lecture."""
    verdict = f"{name}: {get(name).verdict(frame)}"
    if quick and not supported(verdict):
        verdict = verdict.replace(NOT_SHOWN, f"inconclusive at this size: a quick run is too "
                                             f"small to contradict the claim; run the full "
                                             f"version (labkit lab run {name}) or several "
                                             f"seeds (--seeds 0,1,2)")
    return verdict




def supported(verdict: str) -> bool:
    """Whether one run's verdict (:func:`verdict_of`) says the claim holds."""
    return HOLDS in verdict


def combined_verdict(name: str, verdicts: dict[int, str], quick: bool) -> str:
    """One verdict over several seeds' (``{seed: verdict}``), each computed from its CSV.

    Holds only when it holds for every seed. Otherwise a full run is ``contradicted`` (no seed
    supports it) or ``not robust`` (some do); a quick run, too small to contradict anything, is
    ``inconclusive at this size``: the seeds disagree, or none shows the effect."""
    good = [s for s, v in verdicts.items() if supported(v)]
    bad = [s for s in verdicts if s not in good]
    listed = ", ".join(map(str, verdicts))
    if not bad:
        return f"{name}: claim holds for every seed ({listed})"
    if quick:
        why = (f"holds for seed {', '.join(map(str, good))}, not for "
               f"{', '.join(map(str, bad))}: the quick version is within its own noise") if good \
            else f"not shown by seeds {listed}: the quick version is too small to show it"
        return f"{name}: inconclusive at this size ({why}). Run the full version: " \
               f"labkit lab run {name}"
    if good:
        return (f"{name}: claim NOT robust: holds for seed {', '.join(map(str, good))}, not for "
                f"{', '.join(map(str, bad))}")
    return f"{name}: claim contradicted for every seed ({listed})"


def parse_seeds(text: str) -> list[int]:
    """``"0,1,2"`` → ``[0, 1, 2]``: distinct whole numbers >= 0 (``--seeds``)."""
    try:
        seeds = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        seeds = []
    if not seeds or any(s < 0 for s in seeds) or len(set(seeds)) != len(seeds):
        raise LabkitError(f"--seeds takes distinct whole numbers >= 0, e.g. --seeds 0,1,2. "
                          f"Received: {text!r}")
    return seeds


def run_seeds(name: str, seeds: list[int], quick: bool = False,
              out: str | Path | None = None) -> tuple[dict[int, str], str]:
    """Run lab ``name`` once per seed, each into ``OUT/seed-S`` (``OUT`` as for :func:`run`),
    and combine the verdicts (:func:`combined_verdict`); returns ``({seed: verdict},
    combined)``, the combined one also written to ``OUT/verdict.txt``."""
    if not seeds:
        raise LabkitError("--seeds needs at least one seed, e.g. --seeds 0,1,2.")
    base = output_dir(name, out)
    verdicts = {}
    for seed in seeds:
        _, verdicts[seed] = run(name, quick=quick, out=base / f"seed-{seed}", seed=seed)
    combined = combined_verdict(name, verdicts, quick)
    files.write_text(base / "verdict.txt", combined + "\n" + "".join(
        f"  seed {seed}: {verdict}\n" for seed, verdict in verdicts.items()))
    return verdicts, combined
