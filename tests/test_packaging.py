"""Installing labkit as the README says prints no setuptools warning box (issue 17)."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_editable_install_prints_no_warning_box(tmp_path):
    """An editable install of both top-level packages goes through a .pth file: setuptools'
    "Editable installation … same name" BuildBackendWarning does not appear, and both import
    from the checkout."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", venv], check=True)
    pip = [venv / "bin" / "python", "-m", "pip", "install", "-q"]
    subprocess.run([*pip, "--upgrade", "pip"], check=True, capture_output=True)
    done = subprocess.run([*pip, "--no-deps", "-e", ROOT], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "BuildBackendWarning" not in done.stdout + done.stderr, done.stderr
    where = subprocess.run([venv / "bin" / "python", "-c",
                            "import labkit, recipes; print(labkit.__file__, recipes.__file__)"],
                           capture_output=True, text=True, check=True, cwd=tmp_path).stdout
    assert where.split() == [str(ROOT / "labkit" / "__init__.py"),
                             str(ROOT / "recipes" / "__init__.py")]
