"""``labkit lab``: each claim of the lecture as a reproducible experiment.

``run("momentum", quick=True)`` trains real Keras models (or runs Keras's optimizers on a
function), writes ``<name>.csv`` (the numbers), ``<name>.png`` (the plot) and ``verdict.txt`` to
``labs/<name>/``, and returns an :class:`Outcome`: the table, the :class:`Finding` computed from
the CSV as written, and the one-line verdict.

Every module of this package registers its labs with ``@lab(...)`` (see ``_kit.py``) when it is
imported; importing the package imports them all.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass, field
from pathlib import Path

from labkit import files, lecture, seeding
from labkit._lazy import lazy_import
from labkit.errors import LabkitError
from labkit.labs._kit import HOLDS, INCONCLUSIVE, LABS, NOT_SHOWN, Finding, Lab
from labkit.options import did_you_mean

np = lazy_import("numpy")
pd = lazy_import("pandas")

__all__ = ["DEFAULT_SEED", "LABS", "Finding", "Lab", "Outcome", "SeedsOutcome",
           "combined_verdict", "finding_of", "get", "names", "output_dir", "parse_seeds", "run",
           "run_seeds", "verdict_of"]

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


@dataclass(frozen=True)
class Outcome:
    """One run of a lab: its numbers (as written to the CSV), the :class:`Finding` computed
    from them, and whether it was the quick version (which decides how the finding reads)."""

    name: str
    frame: pd.DataFrame = field(repr=False)
    finding: Finding = field(repr=False)
    quick: bool = False
    picture: Path | None = None  # the lab's PNG, as written

    @property
    def holds(self) -> bool:
        return self.finding.holds(self.quick)

    @property
    def verdict(self) -> str:
        """The verdict line, e.g. ``"momentum: …; margin: … — claim holds"``."""
        return f"{self.name}: {self.finding.verdict(self.quick)}"

    def __str__(self) -> str:
        return self.verdict

    def _repr_html_(self) -> str:
        """In a notebook: the verdict over the lab's picture."""
        import base64
        import html

        shown = f"<p><b>{html.escape(self.verdict)}</b></p>"
        if self.picture is not None and self.picture.is_file():
            data = base64.b64encode(self.picture.read_bytes()).decode("ascii")
            shown += f'<img src="data:image/png;base64,{data}" alt="{html.escape(self.name)}">'
        return shown


@dataclass(frozen=True)
class SeedsOutcome:
    """A lab run once per seed (:func:`run_seeds`): each seed's :class:`Outcome` and the one
    verdict over them (:func:`combined_verdict`)."""

    name: str
    outcomes: dict[int, Outcome]
    verdict: str
    holds: bool


def run(name: str, quick: bool = False, out: str | Path | None = None,
        seed: int = DEFAULT_SEED, show_progress: bool = True,
        label: str | None = None) -> Outcome:
    """Run lab ``name``; write its CSV, PNG and verdict to ``out`` (default ``labs/<name>``).
    ``show_progress``: a bar on stderr counts its fits with the running fit's epoch (lines
    every ~10 s outside a terminal, see :mod:`labkit.progress`), named ``label`` (default: the
    lab, its seed).

    Returns:
        An :class:`Outcome`: ``.frame`` (the numbers as written to the CSV), ``.finding``
        (computed from them), ``.verdict`` (the line) and ``.holds``.
    """
    lab = get(name)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise LabkitError(f"--seed must be an integer >= 0. Received: {seed!r}")
    out = output_dir(name, out)
    if out.exists() and not out.is_dir():
        raise LabkitError(f"--out {str(out)!r} is a file, not a folder.")
    from labkit import progress

    with seeding.seeded(seed), progress.bar(
            label or f"{name} (seed {seed}{', quick' if quick else ''})", unit="fits",
            enabled=show_progress):
        measured = lab.measure(quick, seed)
    out.mkdir(parents=True, exist_ok=True)
    csv = out / f"{name}.csv"
    files.write_text(csv, measured.to_csv(index=False))
    frame = pd.read_csv(csv)  # verdict and plot see exactly what the CSV holds
    outcome = Outcome(name, frame, finding_of(name, frame), quick, out / f"{name}.png")
    lab.plot(frame, outcome.picture)
    files.write_text(out / "verdict.txt", outcome.verdict + "\n")
    return outcome


def seconds_left(done: list[str], elapsed: float, left: list[str],
                 quick: bool = False) -> float | None:
    """About how long the labs ``left`` take: their listed times (the full versions' on 2
    cores), scaled by how long the ``done`` ones took against theirs; None for quick runs
    before the first has ended (their times are not listed)."""
    listed = sum(get(n).seconds for n in done)
    if listed and elapsed > 0:
        scale = elapsed / listed
    elif quick:
        return None
    else:
        scale = 1.0
    return scale * sum(get(n).seconds for n in left)


def output_dir(name: str, out: str | Path | None = None) -> Path:
    """Where lab ``name`` writes: ``out``, or ``labs/<name>`` by default."""
    return Path(out) if out is not None else Path("labs") / name


def finding_of(name: str, frame: pd.DataFrame) -> Finding:
    """What lab ``name``'s numbers (e.g. read back from its CSV) show: its :class:`Finding`."""
    return get(name).verdict(frame)


def verdict_of(name: str, frame: pd.DataFrame, quick: bool = False) -> str:
    """Lab ``name``'s verdict line for a table of its numbers. A ``quick`` run's verdict holds
    or fails only when its margin stands out of the noise it measured; otherwise it is
    "inconclusive at this size" (see :meth:`Finding.status`)."""
    return Outcome(name, frame, finding_of(name, frame), quick).verdict


def combined_verdict(name: str, findings: dict[int, Finding],
                     quick: bool) -> tuple[str, bool]:
    """One verdict over several seeds' findings (``{seed: Finding}``), each from its CSV, with
    the margin's median and range, and whether it holds.

    Holds only when it holds for every seed, and is ``contradicted`` when every seed's numbers
    go against it (for a quick run: beyond their noise). Otherwise a full run is ``not
    robust`` (some seeds hold) and a quick one ``inconclusive at this size``. The margin is
    worded as the first seed's; where seeds compared different variants (the better of two
    pretrained bases, say) it says so."""
    statuses = {seed: f.status(quick) for seed, f in findings.items()}
    good = [s for s, status in statuses.items() if status == HOLDS]
    refuted = [s for s, status in statuses.items() if status == NOT_SHOWN]
    bad = [s for s in findings if s not in good]
    margins = [f.margin for f in findings.values()]
    first = next(iter(findings.values()))
    varies = len({f.margin_text for f in findings.values()}) > 1
    spread = (f"{first.margin_words(float(np.median(margins)))} (median; range "
              f"{format(min(margins), first.spec)}–{format(max(margins), first.spec)} over "
              f"{len(margins)} seeds{'; the variant compared differs between seeds' * varies})")

    def seeds(which):
        return ", ".join(map(str, which))
    if not bad:
        return f"{name}: claim holds for every seed ({seeds(good)}): {spread}", True
    if len(refuted) == len(findings):
        return f"{name}: claim contradicted for every seed ({seeds(refuted)}); {spread}", False
    if quick:
        why = (f"holds for seed {seeds(good)}, not for {seeds(bad)}" if good
               else f"not shown by seeds {seeds(bad)}")
        return (f"{name}: {INCONCLUSIVE} ({why}: the quick version is within its own noise; "
                f"{spread}). Run the full version: labkit lab run {name}"), False
    return (f"{name}: claim NOT robust: holds for seed {seeds(good)}, not for {seeds(bad)}; "
            f"{spread}"), False


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
              out: str | Path | None = None, show_progress: bool = True,
              label: str | None = None) -> SeedsOutcome:
    """Run lab ``name`` once per seed, each into ``OUT/seed-S`` (``OUT`` as for :func:`run`),
    and combine the findings (:func:`combined_verdict`); the combined verdict is also written
    to ``OUT/verdict.txt`` with each seed's below it. The progress bar says which seed of how
    many is running."""
    if not seeds:
        raise LabkitError("--seeds needs at least one seed, e.g. --seeds 0,1,2.")
    base = output_dir(name, out)
    outcomes = {seed: run(name, quick=quick, out=base / f"seed-{seed}", seed=seed,
                          show_progress=show_progress,
                          label=f"{label or name}, seed {seed} ({i} of {len(seeds)})")
                for i, seed in enumerate(seeds, 1)}
    verdict, holds = combined_verdict(
        name, {seed: o.finding for seed, o in outcomes.items()}, quick)
    files.write_text(base / "verdict.txt", verdict + "\n" + "".join(
        f"  seed {seed}: {o.verdict}\n" for seed, o in outcomes.items()))
    return SeedsOutcome(name, outcomes, verdict, holds)
