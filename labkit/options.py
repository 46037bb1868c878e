"""Options written as text, read the same way everywhere.

- a value: ``0.5``, ``[64, 32]``, ``64,32``, ``true``, ``relu`` (:func:`parse_value`);
- ``key=value`` assignments, as ``--set`` and ``--data-option`` take them
  (:func:`parse_assignments`);
- a name with arguments: ``exponential(rate=0.5, every=10)`` (:func:`parse_call`), as schedules and
  initializers are written;
- a list of settings: ``flip,rotation=0.1`` (:func:`parse_settings`), as augmentation and early
  stopping are written.

And the one "did you mean" hint for unknown names (:func:`did_you_mean`).
"""

from __future__ import annotations

import ast
import difflib
import re
from collections.abc import Iterable
from typing import Any

from labkit.errors import LabkitError

_CALL = re.compile(r"^\s*([A-Za-z_][\w-]*)\s*(?:\((.*)\))?\s*$", re.DOTALL)


def parse_value(text: str) -> Any:
    """A Python literal (``0.5``, ``[64, 32]``, ``True``, ``None``), ``true``/``false``, a comma
    list of values (``64,32``, ``[x1, x2]``), or else the plain string (``relu``)."""
    stripped = text.strip()
    if stripped.lower() in ("true", "false"):
        return stripped.lower() == "true"
    try:
        return ast.literal_eval(stripped)
    except (ValueError, SyntaxError):
        pass
    if stripped.startswith("[") and stripped.endswith("]"):  # [x1, x2] with bare words
        stripped = stripped[1:-1]
        return [parse_value(part) for part in stripped.split(",") if part.strip()]
    if "," in stripped and "(" not in stripped:
        return [parse_value(part) for part in stripped.split(",") if part.strip()]
    return stripped


def parse_assignments(items: Iterable[str], option: str = "--set") -> dict[str, Any]:
    """``["units=[64, 32]", "dropout=0.2"]`` → ``{"units": [64, 32], "dropout": 0.2}``."""
    values = {}
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key.isidentifier():
            raise LabkitError(f"{option} takes key=value, e.g. {option} dropout=0.2. "
                              f"Received: {item!r}")
        values[key] = parse_value(raw)
    return values


def parse_call(text: str) -> tuple[str, list, dict[str, Any]]:
    """``"name(1, k=v)"`` → ``("name", [1], {"k": v})``; a bare ``"name"`` has no arguments.

    Raises:
        ValueError: the text is not a name, or an argument is not a Python literal.
    """
    match = _CALL.match(text)
    if not match:
        raise ValueError(f"expected NAME or NAME(key=value, ...), got {text!r}")
    name, args = match.group(1), match.group(2)
    if not args or not args.strip():
        return name, [], {}
    try:
        call = ast.parse(f"f({args})", mode="eval").body
        return (name, [ast.literal_eval(a) for a in call.args],
                {k.arg: ast.literal_eval(k.value) for k in call.keywords})
    except (SyntaxError, ValueError):
        raise ValueError(f"arguments must be key=value literals, got {text!r}") from None


def parse_settings(text: str) -> dict[str, Any]:
    """``"flip,rotation=0.1"`` → ``{"flip": True, "rotation": 0.1}``; a bare name means True.

    Raises:
        ValueError: a key is not an identifier or a value is empty.
    """
    settings: dict[str, Any] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, sep, raw = (s.strip() for s in part.partition("="))
        if not key.isidentifier() or (sep and not raw):
            raise ValueError(f"expected key or key=value items separated by commas, got {text!r}")
        settings[key] = parse_value(raw) if sep else True
    return settings


def did_you_mean(name: str, known: Iterable[str]) -> str:
    """``" Did you mean: cnn, cnn1d?"`` for the close matches of ``name``, or ``""``."""
    close = difflib.get_close_matches(name, list(known), n=3)
    return f" Did you mean: {', '.join(close)}?" if close else ""


_UNITS = {"s": 1, "m": 60, "h": 3600}


def parse_duration(text: str, option: str) -> float:
    """``"90s"``, ``"30m"``, ``"2h"`` or plain seconds → seconds."""
    text = str(text).strip().lower()
    unit = text[-1:] if text[-1:] in _UNITS else "s"
    number = text[:-1] if text[-1:] in _UNITS else text
    try:
        value = float(number) * _UNITS[unit]
    except ValueError:
        value = -1.0
    if not value > 0:
        raise LabkitError(f"{option} takes a duration such as 90s, 30m or 2h. Received: {text!r}")
    return value
