"""Datasets from a CSV file: ``--dataset houses.csv --target price``.

Every column but the target(s) is a feature and must be numeric (``true``/``false`` count as
1/0); the features are standardised in the model with the training split's mean and variance
(a ``Rescaling`` layer with a factor and offset per feature), so the saved model takes the raw
columns. The task follows the target(s):

- one column of text, or of integers 0..k−1 with at most :data:`MAX_CLASSES` values → classes
  (``binary`` for two, as the R lab, else ``classification``); text classes are named by their
  values in sorted order;
- several columns of 0/1 → ``multilabel``, the labels named by the columns;
- numbers otherwise → ``regression``, one target or several.

Options: ``target`` (a column, or a list of columns; required), ``dropna`` (drop rows with a
missing value instead of stopping). A fixed 20 % of the rows is the test split.

R's files read as written: ``write.csv`` (commas, decimal points) and ``write.csv2`` (semicolons,
decimal commas: the default in Swedish and other European locales), told apart by the header
row; quoted names, ``NA`` for a missing value, and R's row names (a first column without a
name) are understood. The dialect read is a note of ``labkit data``.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path

from labkit._lazy import lazy_import
from labkit.data.base import Data, DatasetSpec, train_val_test
from labkit.errors import LabkitError
from labkit.options import did_you_mean

np = lazy_import("numpy")  # imported on first use: listing commands never pay for it

OPTIONS = ("target", "dropna")
MAX_CLASSES = 20  # an integer target with more distinct values is a quantity: regression
# Refused before pandas reads anything: a course's tables are far smaller, and reading a larger
# one would take several times its size in memory.
MAX_CSV_BYTES, MAX_COLUMNS = 2**30, 100_000
HEADER_BYTES = 16 * 2**20  # a header row longer than this is refused without reading on


@dataclass(frozen=True)
class Table:
    """A CSV read and checked: features and targets as float32/int64 arrays."""

    features: tuple[str, ...]
    targets: tuple[str, ...]
    x: np.ndarray  # (rows, features) float32
    y: np.ndarray  # (rows,) int64 class indices, or (rows, targets) float32
    task: str
    class_names: tuple[str, ...]
    dropped: int  # rows with a missing value dropped (dropna)
    dialect: str = "comma-separated"  # how the file was read, as `labkit data` says it


def read(name: str, options: dict) -> Table:
    """The checked table of CSV ``name`` with ``options``; a bad file or column is a
    LabkitError naming it. Validating a config and then training read the file once."""
    path = Path(name)
    if not path.is_file():
        raise LabkitError(f"Dataset file {name!r} does not exist.")
    target = options.get("target")
    targets = tuple(target) if isinstance(target, (list, tuple)) else \
        ((target,) if target is not None else ())
    dropna = options.get("dropna", False)
    if not isinstance(dropna, bool):
        raise LabkitError(f"dropna is true or false. Received: {dropna!r}")
    stat = os.stat(path)
    if stat.st_size > MAX_CSV_BYTES:
        raise LabkitError(f"{name} is {stat.st_size / 2**30:.1f} GiB; labkit reads CSV files of "
                          f"up to {MAX_CSV_BYTES / 2**30:.0f} GiB into memory. Sample or split "
                          "it, or save it as an .npz.")
    return _read(str(path.resolve()), stat.st_mtime_ns, stat.st_size, tuple(map(str, targets)),
                 dropna)


@functools.lru_cache(maxsize=2)
def _read(path: str, mtime_ns: int, size: int, targets: tuple[str, ...],
          dropna: bool) -> Table:
    import pandas as pd

    try:
        separator, decimal, dialect = sniff(path)
        frame = pd.read_csv(path, sep=separator, decimal=decimal)
    except pd.errors.EmptyDataError:
        raise LabkitError(f"{path} is empty: a CSV dataset needs a header row and data rows."
                          ) from None
    except (pd.errors.ParserError, UnicodeDecodeError, OSError) as err:
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise LabkitError(f"{path} is not a readable CSV file: {reason}") from None
    if len(frame.columns) and str(frame.columns[0]).startswith("Unnamed: 0"):
        frame = frame.iloc[:, 1:]  # R's row names: a first column whose header is ""
        dialect += ", R's row names left out"
    columns = [str(c) for c in frame.columns]
    frame.columns = columns
    if not targets:
        raise LabkitError(f"Name the column to predict: --target COLUMN (columns of {path}: "
                          f"{', '.join(columns)}).")
    missing = [t for t in targets if t not in columns]
    if missing:
        raise LabkitError(f"{path} has no column {missing[0]!r}.{did_you_mean(missing[0], columns)}"
                          f" Columns: {', '.join(columns)}.")
    features = tuple(c for c in columns if c not in targets)
    if not features:
        raise LabkitError(f"{path} has no feature columns besides the target(s).")
    if frame.empty:
        raise LabkitError(f"{path} has a header but no data rows.")
    for column in features:
        kind = frame[column].dtype.kind
        if kind not in "biuf":
            example = frame[column].dropna().iloc[0] if frame[column].notna().any() else ""
            raise LabkitError(f"{path}: feature column {column!r} is not numeric (e.g. "
                              f"{example!r}); convert it to numbers or drop the column.")
    used = list(features) + list(targets)
    holes = frame[used].isna().sum()
    dropped = 0
    if holes.any():
        if not dropna:
            worst = holes[holes > 0]
            listed = ", ".join(f"{c!r} ({n} rows)" for c, n in worst.items())
            raise LabkitError(f"{path} has missing values in {listed}; fill them, or pass "
                              "--data-option dropna=true to drop those rows.")
        before = len(frame)
        frame = frame.dropna(subset=used)
        dropped = before - len(frame)
        if frame.empty:
            raise LabkitError(f"{path}: every row has a missing value; nothing is left.")
    x = frame[list(features)].to_numpy(dtype="float32")
    task, y, class_names = _targets(path, frame, targets)
    return Table(features, targets, x, y, task, class_names, dropped, dialect)


def sniff(path: str) -> tuple[str, str, str]:
    """``(separator, decimal mark, description)`` of a CSV, from its header row: semicolons
    outside quotes mean R's ``write.csv2`` (and Excel's in comma-decimal locales), with decimal
    commas; otherwise commas and decimal points. A header of more than :data:`MAX_COLUMNS`
    columns is a LabkitError naming the limit."""
    with open(path, encoding="utf-8", errors="replace") as f:
        header = f.readline(HEADER_BYTES)
    quoted, semicolons, commas = False, 0, 0
    for char in header:
        if char == '"':
            quoted = not quoted
        elif not quoted:
            semicolons += char == ";"
            commas += char == ","
    columns = max(semicolons, commas) + 1
    if columns > MAX_COLUMNS or (len(header) >= HEADER_BYTES and not header.endswith("\n")):
        raise LabkitError(f"{path} has {'over ' if columns <= MAX_COLUMNS else ''}"
                          f"{max(columns, MAX_COLUMNS + 1):,} columns; labkit reads CSV files of "
                          f"up to {MAX_COLUMNS:,} columns. Select the columns you need first.")
    if semicolons > commas:
        return ";", ",", "semicolon-separated with decimal commas (R's write.csv2)"
    return ",", ".", "comma-separated"


def _targets(path: str, frame, targets: tuple[str, ...]):
    """``(task, y, class_names)`` of the target column(s)."""
    values = frame[list(targets)]
    if len(targets) > 1:
        if any(values[t].dtype.kind not in "biuf" for t in targets):
            raise LabkitError(f"{path}: several targets must all be numbers (0/1 for labels).")
        y = values.to_numpy(dtype="float32")
        task = "multilabel" if np.isin(y, (0, 1)).all() else "regression"
        return task, y, targets if task == "multilabel" else ()
    column = values[targets[0]]
    if column.dtype.kind in "biu" or column.dtype.kind == "O" or column.dtype.name == "category":
        if column.dtype.kind in "biu":
            distinct = np.unique(column.to_numpy())
            if not (len(distinct) <= MAX_CLASSES and distinct.min() >= 0
                    and distinct.max() < MAX_CLASSES):
                return "regression", column.to_numpy(dtype="float32")[:, None], ()
            classes = int(distinct.max()) + 1
            names = tuple(map(str, range(max(classes, 2))))
            y = column.to_numpy(dtype="int64")
        else:
            names = tuple(sorted(map(str, column.unique())))
            y = column.astype(str).map({n: i for i, n in enumerate(names)}).to_numpy("int64")
            if len(names) < 2:
                raise LabkitError(f"{path}: target {targets[0]!r} has one class ({names[0]!r}); "
                                  "a classifier needs at least two.")
        return ("binary" if len(names) == 2 else "classification"), y, names
    if column.dtype.kind == "b":
        return "binary", column.to_numpy(dtype="int64"), ("false", "true")
    return "regression", column.to_numpy(dtype="float32")[:, None], ()


def spec_of(name: str, table: Table, mean=None, variance=None) -> DatasetSpec:
    num_classes = len(table.class_names) if table.task in ("binary", "classification") else \
        (len(table.targets) if table.task == "multilabel" else table.y.shape[1])
    return DatasetSpec(name, (len(table.features),), num_classes, task=table.task,
                       class_names=table.class_names, mean=mean, variance=variance,
                       feature_names=table.features)


def spec(name: str, options: dict) -> DatasetSpec:
    return spec_of(name, read(name, options))


def load(name: str, validation_split: float, **options) -> Data:
    """The splits of CSV ``name``: float32 feature rows, the targets; the spec carries the
    training split's feature mean and variance for the model's standardisation."""
    table = read(name, options)
    stratify = table.task in ("binary", "classification") and \
        np.unique(table.y, return_counts=True)[1].min() >= 3  # scikit-learn needs a few per class
    train, val, test = train_val_test(table.x, table.y, validation_split, stratify=stratify)
    mean = tuple(float(v) for v in train[0].mean(axis=0))
    variance = tuple(float(v) for v in train[0].var(axis=0))
    notes = (f"read as {table.dialect}",)
    if table.dropped:
        notes += (f"{table.dropped} row(s) with missing values dropped (dropna)",)
    return Data(spec_of(name, table, mean, variance), train, val, test, notes=notes)
