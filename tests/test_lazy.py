"""labkit._lazy: modules imported on first attribute access, nothing half-imported left behind."""

import subprocess
import sys


def test_deferred_module_imports_on_first_use():
    code = """
import sys
from labkit._lazy import is_loaded, lazy_import
colorsys = lazy_import("colorsys")
assert not is_loaded("colorsys") and "colorsys" not in sys.modules
assert colorsys.rgb_to_hsv(1.0, 0.0, 0.0) == (0.0, 1.0, 1.0)
assert is_loaded("colorsys")
assert lazy_import("colorsys") is sys.modules["colorsys"]
"""
    subprocess.run([sys.executable, "-c", code], check=True)


def test_unknown_module_is_refused_at_once():
    import pytest

    from labkit._lazy import lazy_import

    with pytest.raises(ModuleNotFoundError):
        lazy_import("no_such_module_here")
