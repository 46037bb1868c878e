"""Deferred imports, so that listing and describing never pay for TensorFlow, numpy or pandas."""

from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType
from typing import Any


class _Deferred:
    """Stands for a module until its first attribute is read, then imports it for real.

    Unlike ``importlib.util.LazyLoader``, nothing half-executed is put in ``sys.modules``: a
    package whose own import re-enters it (Keras on the PyTorch backend does) sees only the
    ordinary import machinery.
    """

    __slots__ = ("_name",)

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attribute: str) -> Any:
        return getattr(importlib.import_module(self._name), attribute)

    def __repr__(self) -> str:
        return f"<deferred module {self._name!r}>"


def lazy_import(name: str) -> ModuleType:
    """Module ``name``, imported on first attribute access rather than now (a module already
    imported is returned as is)."""
    import sys

    if name in sys.modules:
        return sys.modules[name]
    if importlib.util.find_spec(name) is None:
        raise ModuleNotFoundError(f"No module named {name!r}")
    return _Deferred(name)  # type: ignore[return-value]


def is_loaded(name: str) -> bool:
    """Whether module ``name`` has been imported."""
    import sys

    return name in sys.modules
