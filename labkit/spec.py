"""Options written as text: a name with arguments, ``exponential(rate=0.5, every=10)``, or a list
of settings, ``flip,rotation=0.1``. Used by recipes (initializers) and training options
(schedules, augmentation, early stopping) alike, so they read the same everywhere."""

from __future__ import annotations

import ast
import re
from typing import Any

_CALL = re.compile(r"^\s*([A-Za-z_][\w-]*)\s*(?:\((.*)\))?\s*$", re.DOTALL)


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
        settings[key] = _literal(raw) if sep else True
    return settings


def _literal(raw: str) -> Any:
    if raw.lower() in ("true", "false"):
        return raw.lower() == "true"
    try:
        return ast.literal_eval(raw)
    except (ValueError, SyntaxError):
        return raw
