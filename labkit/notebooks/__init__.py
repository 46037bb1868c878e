"""The course as Jupyter notebooks: one per part of the lecture and two more, a student's lab
sheets, each run top to bottom offline.

Each notebook's source is a jupytext "percent" script in this folder (``1-optimisation.py``:
code cells start at ``# %%``, text cells at ``# %% [markdown]``), which diffs, reviews and lints
as Python. ``make notebooks`` (:func:`build_all`) builds the ``.ipynb`` beside it with jupytext,
outputs stripped and cell ids numbered so a rebuild changes nothing; the package ships both, and
``labkit notebook NAME --out DIR`` (:func:`write`) copies the ``.ipynb`` for a student who
installed labkit without the repository (jupytext is needed only to build).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from labkit.errors import LabkitError
from labkit.options import did_you_mean

HERE = Path(__file__).parent
ALL = "all"


@dataclass(frozen=True)
class Notebook:
    name: str  # what `labkit notebook NAME` takes
    stem: str  # the files' name, numbered in the course's order
    title: str

    @property
    def source(self) -> Path:
        return HERE / f"{self.stem}.py"

    @property
    def packaged(self) -> Path:
        return HERE / f"{self.stem}.ipynb"


NOTEBOOKS = {n.name: n for n in (
    Notebook("optimisation", "1-optimisation",
             "Optimisation: gradient descent, SGD, the learning rate, momentum, start values, "
             "Adam (lecture topics 1-8)"),
    Notebook("regularisation", "2-regularisation",
             "Regularisation: L1/L2, dropout, early stopping, augmentation, ensembles, transfer "
             "(topics 9-12)"),
    Notebook("convolution", "3-convolution",
             "Convolutional networks: convolution, padding and pooling, parameter sharing, 1-D "
             "CNNs, residual nets, VGG16, Grad-CAM (topics 13-22)"),
    Notebook("own-data", "4-own-data",
             "Your own data, end to end: an image folder in the R lab's layout to an exported "
             "model"),
    Notebook("r-to-python", "5-r-to-python",
             "From R to Python: the R lab's code beside Keras 3 and labkit, cell by cell"),
)}


def get(name: str) -> Notebook:
    if name not in NOTEBOOKS:
        raise LabkitError(f"Unknown notebook {name!r}.{did_you_mean(name, NOTEBOOKS)} "
                          f"Notebooks: {', '.join(NOTEBOOKS)}.")
    return NOTEBOOKS[name]


def write(names: list[str], out: str | Path, force: bool = False) -> list[Path]:
    """Copy the notebooks ``names`` (or ``["all"]``) into folder ``out`` (made if missing);
    returns the written paths. An existing notebook there is kept unless ``force``: it may
    hold a student's work."""
    from labkit import files

    chosen = list(NOTEBOOKS.values()) if ALL in names else [get(n) for n in names]
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise LabkitError(f"--out {str(out)!r} is a file, not a folder.")
    targets = [out / n.packaged.name for n in chosen]
    kept = [str(t) for t in targets if t.exists()]
    if kept and not force:
        one = len(kept) == 1
        raise LabkitError(f"{', '.join(kept)} already {'exists' if one else 'exist'} (your "
                          f"work?); pass --force to replace {'it' if one else 'them'}, or "
                          "another --out.")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise files.FileFault(out, err) from None
    for notebook, target in zip(chosen, targets, strict=True):
        files.write_text(target, notebook.packaged.read_text(encoding="utf-8"))
    return targets


def build(name: str) -> str:
    """Notebook ``name``'s ``.ipynb`` text, built from its percent script with jupytext:
    no outputs, cell ids ``cell-1``, ``cell-2``, … and only the kernel's metadata, so the same
    source always builds the same file."""
    import jupytext
    import nbformat

    notebook = jupytext.read(get(name).source, fmt="py:percent")
    notebook.metadata = {
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"}}
    for k, cell in enumerate(notebook.cells, 1):
        cell.id = f"cell-{k}"
        cell.metadata = {}
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    nbformat.validate(notebook)
    return nbformat.writes(notebook) + "\n"


def stale() -> list[str]:
    """The notebooks whose ``.ipynb`` differs from what their source builds (``make
    notebooks`` refreshes them)."""
    return [name for name, notebook in NOTEBOOKS.items()
            if not notebook.packaged.is_file()
            or notebook.packaged.read_text(encoding="utf-8") != build(name)]


def build_all() -> list[Path]:
    """``make notebooks``: (re)build every ``.ipynb`` from its source; returns the paths."""
    from labkit import files

    for name, notebook in NOTEBOOKS.items():
        files.write_text(notebook.packaged, build(name))
    return [n.packaged for n in NOTEBOOKS.values()]
