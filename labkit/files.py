"""Files that are whole or absent: every file labkit writes goes through a :class:`Batch`
(:func:`atomic_path` is a batch of one); an operating-system failure becomes a
:class:`FileFault` that says what happened in words.

The content goes to a temporary file beside the target, is flushed to the disk (``fsync``), and
is renamed over the target; the folder is synced after the rename, so the new name survives a
power cut too. A process killed at any instant leaves the old file or the new one, never half.
A batch renames several files in order, so an epoch's history never shows up after its
checkpoint.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from labkit.errors import LabkitError

# errno → (what happened to PATH, what to do next)
_CAUSES = {
    errno.ENOSPC: ("no space left on the device holding {path}",
                   "Free some space, or choose a folder on another disk (--runs-dir, --out)."),
    errno.EDQUOT: ("the disk quota is used up on the device holding {path}",
                   "Free some space, or choose a folder on another disk (--runs-dir, --out)."),
    errno.EROFS: ("{path} is on a read-only filesystem",
                  "Choose a folder you can write to (--runs-dir, --out)."),
    errno.EACCES: ("permission denied for {path}",
                   "Choose a folder you can write to (--runs-dir, --out), or fix its permissions."),
    errno.EPERM: ("the operation is not permitted on {path}",
                  "Choose a folder you can write to (--runs-dir, --out), or fix its permissions."),
    errno.ENOENT: ("{path} does not exist (or a folder on its path does not)",
                   "Check the path; labkit creates only the last folder of --runs-dir's parents "
                   "that exist."),
    errno.ENOTDIR: ("a part of the path {path} is a file, not a folder",
                    "Choose another folder (--runs-dir, --out)."),
    errno.EISDIR: ("{path} is a folder, not a file", "Name a file."),
    errno.ENAMETOOLONG: ("the name {path} is too long for its filesystem",
                         "Choose a shorter --name or a shorter folder."),
    errno.EIO: ("an input/output error on the device holding {path} (a failing disk or a lost "
                "network mount)", "Check the disk, then try again."),
}


class FileFault(LabkitError):
    """An operating-system failure reading or writing ``path``, told in words with what to do
    next (``no space left on the device holding runs/x. Free some space, …``)."""

    def __init__(self, path: str | os.PathLike | None, err: OSError) -> None:
        self.path = Path(path) if path is not None else (
            Path(err.filename) if getattr(err, "filename", None) else None)
        self.errno = err.errno
        super().__init__(describe(err, self.path))


def describe(err: OSError, path: str | os.PathLike | None = None) -> str:
    """One sentence for an OSError: the cause in words, the file, what to do next."""
    path = path if path is not None else getattr(err, "filename", None)
    shown = str(path) if path is not None else "a file"
    cause, advice = _CAUSES.get(err.errno, (f"{{path}}: {err.strerror or err}", ""))
    text = cause.format(path=shown)
    return f"{text[:1].upper()}{text[1:]}." + (f" {advice}" if advice else "")


class Batch:
    """Files that appear together: each is written whole under a temporary name beside it
    (:meth:`new`, :meth:`write`); on leaving the ``with`` block every one is flushed to the
    disk, renamed over its target in the order they were added, and their folders are synced
    once. A fault anywhere (an OSError becomes a :class:`FileFault` naming the file),
    or an exception in the block, leaves the old files and no temporary one; a fault in a
    rename leaves the files renamed before it new and the rest old. So a reader, or a process
    killed at any instant, sees each file old or new, never half, and one that comes later in
    the batch never new before one that comes earlier."""

    def __init__(self) -> None:
        self._staged: list[tuple[str, Path]] = []  # (temporary, target)

    def __enter__(self) -> Batch:
        return self

    def new(self, path: str | os.PathLike) -> Path:
        """A new, empty temporary file for ``path``'s content, for the caller to write."""
        path = Path(path)
        try:
            tmp = _create_beside(path)
        except OSError as err:
            raise FileFault(path, err) from None
        self._staged.append((tmp, path))
        return Path(tmp)

    def write(self, path: str | os.PathLike, data: bytes | memoryview) -> None:
        """``data`` as ``path``'s content."""
        tmp = self.new(path)
        try:
            tmp.write_bytes(data)
        except OSError as err:
            raise FileFault(path, err) from None

    def __exit__(self, kind, error, trace) -> None:
        staged, self._staged = self._staged, []
        try:
            if kind is not None:
                return
            at = None  # the file (or folder) being flushed or renamed
            try:
                for tmp, target in staged:
                    at = target
                    fsync(tmp)
                for tmp, target in staged:
                    at = target
                    os.replace(tmp, target)
                for at in dict.fromkeys(target.parent for _, target in staged):
                    fsync(at)
            except OSError as err:
                raise FileFault(at, err) from None
        finally:
            for tmp, _ in staged:  # those not renamed
                with contextlib.suppress(OSError):
                    os.unlink(tmp)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` (same suffix); on success rename it over ``path``
    (a :class:`Batch` of one file).

    The temporary file is created as ``open()`` creates files (mode 0o666 less the umask), so
    the renamed file has the permissions any new file would, without reading or changing the
    process's umask."""
    with Batch() as batch:
        tmp = batch.new(path)
        try:
            yield tmp
        except OSError as err:  # the content could not be written: the old file stays
            raise FileFault(path, err) from None


def remove_leftovers(folder: str | os.PathLike) -> list[str]:
    """Remove the temporary files a killed process left in ``folder`` (``kill -9`` in the middle
    of a write): the names :func:`atomic_path` makes. Call it only while no other process
    writes there (a run's lock held); the names removed."""
    removed = []
    for path in Path(folder).iterdir():
        if _TEMPORARY.fullmatch(path.name) and path.is_file():
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
                removed.append(path.name)
    return removed


_TEMPORARY = re.compile(r"\..+\.[0-9a-f]{8}(\.\w+)?")  # .STEM.RANDOM.SUFFIX


def _beside(path: Path) -> str:
    """A fresh temporary name beside ``path`` (``.STEM.RANDOM.SUFFIX``)."""
    return str(path.parent / f".{path.stem}.{secrets.token_hex(4)}{path.suffix}")


def _create_beside(path: Path) -> str:
    """A new, empty file with a fresh name beside ``path``."""
    for _ in range(100):
        tmp = _beside(path)
        try:
            os.close(os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
            return tmp
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "no free temporary name", str(path.parent))


def fsync(path: str | os.PathLike) -> None:
    """Flush a file's or a folder's content to the disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json(path: str | os.PathLike, data: Any) -> None:
    write_text(path, json_text(data))


def json_text(data: Any) -> str:
    """``data`` as labkit's JSON files hold it (indented, numpy scalars as numbers)."""
    return json.dumps(data, indent=2, sort_keys=False, default=jsonable) + "\n"


def jsonable(value: Any) -> Any:
    """JSON for numpy scalars and tuples; ``json.dumps(..., default=jsonable)``."""
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    if isinstance(value, (tuple, set)):
        return list(value)
    raise TypeError(f"not JSON serializable: {type(value).__name__}")
