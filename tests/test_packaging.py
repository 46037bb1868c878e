"""Installing labkit as the README says: no setuptools warning box (issue 17), and a lock that
pins every dependency within what pyproject.toml allows (issue 30)."""

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


def _requirements() -> list[str]:
    """pyproject.toml's dependencies and those of the extras the dev extra pulls in (not gpu,
    whose CUDA wheels are for GPU machines)."""
    import re
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    wanted, pending = list(project["dependencies"]), ["dev"]
    while pending:
        for requirement in extras[pending.pop()]:
            own = re.fullmatch(r"labkit\[(.+)\]", requirement)
            if own:
                pending += [name.strip() for name in own.group(1).split(",")]
            else:
                wanted.append(requirement)
    return wanted


def test_the_lock_pins_every_dependency_within_what_pyproject_allows():
    """`make install` installs requirements.lock's versions: a dependency added to pyproject
    and not locked (or locked outside its range) fails here, in CI."""
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name
    from packaging.version import Version

    locked = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        if line and not line.startswith("#"):
            name, version = line.split("==")
            locked[canonicalize_name(name)] = Version(version)
    for text in _requirements():
        requirement = Requirement(text)
        name = canonicalize_name(requirement.name)
        assert name in locked, f"{requirement.name} is in pyproject.toml but not locked: make lock"
        assert requirement.specifier.contains(locked[name], prereleases=True), (
            f"requirements.lock has {requirement.name}=={locked[name]}, outside {text!r}")


def test_the_python_floor_is_keras_s_and_the_readme_says_so():
    """Runs everywhere (the pip check below needs a Python 3.10 on the machine): labkit declares
    the floor Keras has, 3.11, and the README names it."""
    import tomllib

    from packaging.specifiers import SpecifierSet

    floor = SpecifierSet(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
                         ["requires-python"])
    assert "3.11.0" in floor and "3.10.14" not in floor
    assert "Python 3.11+" in (ROOT / "README.md").read_text()


def _oldest_python_below_the_floor() -> str | None:
    """A Python 3.10 on this machine (pyenv's, or on PATH), to show the floor is declared."""
    import shutil

    for candidate in (Path.home() / ".pyenv" / "versions").glob("3.10.*/bin/python"):
        return str(candidate)
    return shutil.which("python3.10")


@pytest.mark.slow  # pip builds the metadata in an isolated environment: ~20 s
def test_python_below_the_floor_is_refused_by_pip_with_the_reason(tmp_path):
    """Keras >= 3.14 needs Python 3.11, so labkit declares it: on 3.10 pip says so about labkit,
    not in a resolver error about Keras. (CI installs and tests on 3.11, the floor.)"""
    import shutil

    python = _oldest_python_below_the_floor()
    if python is None:  # the declaration itself is checked by the test above, everywhere
        pytest.skip("no Python 3.10 on this machine")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, tmp_path / name)
    for package in ("labkit", "recipes"):
        shutil.copytree(ROOT / package, tmp_path / package,
                        ignore=shutil.ignore_patterns("__pycache__"))
    done = subprocess.run([python, "-m", "pip", "install", "--dry-run", "--no-deps", "."],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode != 0
    assert "ERROR: Package 'labkit' requires a different Python: 3.10" in done.stderr
    assert "not in '>=3.11'" in done.stderr
