"""The README's and docs' examples run as written: every line of every ```bash block and every
```python block of README.md and docs/*.md is executed, in order, in one scratch folder that holds
the files the examples name (the R lab's cats-vs-dogs folder, a CSV of houses, photos, the VGG16
weights file). ``labkit`` is on the PATH as after ``source .venv/bin/activate``, and
``$LABKIT_MAX_EPOCHS`` cuts long trainings short (never the command itself); a command whose
comment states a test accuracy (``# ~0.97 test accuracy``) trains in full and must reach it. A
command fails the test when it errors (or, where the README says it fails, when it does not fail
that way) or when an outcome it states (an accuracy, a file, a message) does not show. A command
that serves until Ctrl-C (``SERVES``) is started, asked for the page at the URL it prints, and
stopped with SIGINT. The few commands that cannot run inside the suite are listed in
``NOT_HERE`` with the reason."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```(\w+)\n(.*?)^```", re.S | re.M)
CAP = "2"  # epochs per phase for the examples that do not state an accuracy

pytestmark = pytest.mark.slow

# Commands (by their start) that do not run inside the test suite, and why.
NOT_HERE = {
    "make train-digits": ".ci/run runs it first, on a fresh clone, as the README's main job",
    "make test": "the test suite itself (.ci/run runs it)",
    "make bench": "a benchmark: minutes of timing on an idle machine, run by hand",
    ".venv/bin/python bench/": "a benchmark: minutes of timing on an idle machine, run by hand",
    "KERAS_BACKEND=jax .venv/bin/python bench/": "a benchmark, run by hand",
    "bash bench/gpu.sh": "needs an NVIDIA GPU (docs: Speed and scale)",
    "make pictures": "rewrites docs/pictures/ in the checkout; run by hand when they change",
    "make labs-check": "every full lab for 3 seeds: about 40 min (docs/labs.md has its table)",
}

# Commands that serve until Ctrl-C: started, asked for their page, then sent SIGINT.
SERVES = ("labkit playground", "make playground")

# What a command (by its start) must show: ("out", regex on its output), ("file", path made),
# ("fails", regex of the one Error line it must end with), ("metric", file, key, minimum).
EXPECT = {
    "labkit --version": [("out", r"labkit, version \d+\.\d+")],
    "labkit recipes": [("out", r"cnn\s")],
    "labkit notebook all --out course": [("file", "course/5-r-to-python.ipynb")],
    "labkit notebook own-data --out course": [("file", "course/4-own-data.ipynb")],
    "labkit data houses.npz": [("out", r"regression")],
    "labkit data cats_and_dogs": [("out", r"binary"), ("out", r"cats")],
    "labkit describe cnn --input-shape 150x150x3": [("out", r"Parameters: 3,453,121")],
    "labkit train cnn --dataset digits --set filters=[16,32] --epochs 20 --name small-cnn": [
        ("file", "runs/small-cnn/model.keras")],
    "labkit train --config experiment.yaml --epochs 30 --print-config": [
        ("out", r'"epochs": 30')],
    "labkit train --resume runs/small-cnn": [("fails", r"nothing to resume")],
    "labkit launch --processes 2 -- train --resume runs/dp2": [("fails", r"nothing to resume")],
    "labkit launch --processes 2 -- train cnn": [("file", "runs/dp2/model.keras")],
    "labkit evaluate runs/small-cnn": [("file", "runs/small-cnn/confusion_matrix.png")],
    "labkit predict runs/cats-convnet holiday/": [("file", "predictions.csv")],
    "labkit predict runs/houses new_houses.csv": [("out", r"value|price")],
    "labkit export runs/cats-convnet --format all": [
        ("file", f"runs/cats-convnet/export/{f}/parity.json")
        for f in ("keras", "savedmodel", "litert", "onnx")],
    "labkit export runs/cats-convnet --format litert": [("file", "app/model/model.tflite")],
    "labkit explain runs/cats-vgg16 my_cat.jpg": [("out", r"Grad-CAM at vgg16/block5_conv3")],
    "labkit runs --format csv > runs.csv": [("file", "runs.csv")],
    "labkit sweep mlp --dataset digits --epochs 20 --set units=[64] --name lr-dropout": [
        ("file", "runs/lr-dropout/results.csv")],
    "labkit evaluate runs/houses": [("file", "runs/houses/predicted_vs_true.png")],
    "labkit lab run momentum --seeds": [("out", r"claim holds for every seed \(0, 1, 2\)")],
    "labkit lab run momentum": [("out", r"claim holds")],
    "labkit lab run dropout --quick": [("out", r"inconclusive at this size")],
    "labkit lab run all --quick": [("out", r"\d+ of \d+ claims hold")],
    "labkit train vgg16 --dataset digits": [("out", r"warning: .*1×1")],
    "labkit train vgg16_transfer --dataset digits --set weights=imagenet": [
        ("fails", r"The ImageNet weights are not in .* pass weights=PATH")] if not (
        Path.home() / ".keras" / "models" / "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5"
    ).exists() else [],  # offline, as the README says; a machine that has the file trains
}
STATED = re.compile(r"#.*~(0\.\d+) test accuracy")  # a comment stating what a run reaches
SLACK = 0.05  # how far below a stated accuracy a run may end (other machines, other versions)


def examples(path: Path) -> list[tuple[str, str]]:
    """``(language, text)`` of each fenced block of ``path``, in order."""
    return [(m.group(1), m.group(2)) for m in FENCE.finditer(path.read_text())]


def shell_lines(text: str) -> list[str]:
    """The commands of a shell block: continuation lines joined, comment lines dropped (bash
    drops the comments after a command itself)."""
    joined = re.sub(r"\\\n\s*", " ", text)
    return [line for line in joined.splitlines() if line.strip() and not line.startswith("#")]


def _matching(table: dict, command: str):
    """The entry of ``table`` whose key starts ``command`` (the longest)."""
    keys = [k for k in table if command.startswith(k)]
    return table[max(keys, key=len)] if keys else None


def _write_images(folder: Path, count: int, tint: int, rng, suffix: str = ".jpg") -> None:
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    for k in range(count):
        pixels = rng.integers(0, 120, (48, 48, 3))
        pixels[..., tint] += 120
        Image.fromarray(pixels.astype("uint8")).save(folder / f"{k:03d}{suffix}")


@pytest.fixture(scope="module")
def scratch(tmp_path_factory, notop_weights):
    """A folder with what the examples name: ``cats_and_dogs/`` in the R lab's layout (cats
    reddish, dogs bluish), photos (``my_cat.jpg``, ``holiday/``, ``new/*.png``), ``houses.csv``
    and ``houses.npz`` (price from four features), ``new_houses.csv``, the VGG16 notop weights
    file, and the YAML configs the README shows."""
    import pandas as pd

    work = tmp_path_factory.mktemp("docs")
    rng = np.random.default_rng(0)
    for split, count in (("train", 24), ("validation", 8), ("test", 8)):
        for tint, name in ((0, "cats"), (2, "dogs")):
            _write_images(work / "cats_and_dogs" / split / name, count, tint, rng)
    _write_images(work / "holiday", 3, 0, rng)
    _write_images(work / "new", 2, 2, rng, ".png")
    (work / "holiday" / "000.jpg").rename(work / "my_cat.jpg")
    x = rng.normal(size=(300, 4))
    price = 100 + x @ np.array([20.0, -10.0, 5.0, 2.0]) + rng.normal(0, 2, 300)
    columns = ["rooms", "age", "area", "distance"]
    houses = pd.DataFrame(x, columns=columns).assign(price=price)
    houses.to_csv(work / "houses.csv", index=False)
    houses[columns].head(5).to_csv(work / "new_houses.csv", index=False)
    np.savez(work / "houses.npz", x=x.astype("float32"), y=price.astype("float32"))
    (work / notop_weights[0].name).symlink_to(notop_weights[0])
    for path in DOCS:
        for language, text in examples(path):
            if language == "yaml":  # the README names them experiment.yaml and sweep.yaml
                name = "sweep.yaml" if "sweep:" in text else "experiment.yaml"
                (work / name).write_text(text)
    return work


def _environment(capped: bool) -> dict:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "MPLBACKEND": "Agg", "LABKIT_MAX_EPOCHS": CAP if capped else ""}
    env.pop("KERAS_BACKEND", None)
    return env


def _check(command: str, result, work: Path) -> list[str]:
    """What went wrong with one command: its exit status against the README, then each stated
    outcome."""
    output = result.stdout + result.stderr
    expected = _matching(EXPECT, command) or []
    must_fail = [pattern for kind, pattern, *_ in expected if kind == "fails"]
    problems = []
    if must_fail:
        last = output.strip().splitlines()[-1] if output.strip() else ""
        if result.returncode != 1 or not (last.startswith("Error: ")
                                          and re.search(must_fail[0], last)):
            problems.append(f"should fail with an Error line matching {must_fail[0]!r}; "
                            f"exit {result.returncode}, last line {last!r}")
        return problems
    if result.returncode != 0:
        return [f"exit {result.returncode}:\n{output[-3000:]}"]
    stated = STATED.search(command)
    if stated:  # trained in full: the accuracy the comment states, give or take SLACK
        expected = [*expected, ("metric", "metrics.json", "test_accuracy",
                                float(stated.group(1)) - SLACK)]
    for kind, what, *more in expected:
        if kind == "out" and not re.search(what, output):
            problems.append(f"output lacks {what!r}:\n{output[-1500:]}")
        if kind == "file" and not (work / what).exists():
            problems.append(f"did not make {what}")
        if kind == "metric":
            runs = sorted((work / "runs").glob("**/" + what), key=lambda p: p.stat().st_mtime)
            value = json.loads(runs[-1].read_text())[more[0]] if runs else None
            if value is None or value < more[1]:
                problems.append(f"{more[0]} {value} < {more[1]} (the README states it)")
    return problems


def _serve_and_stop(command: str, work: Path) -> list[str]:
    """Run a serving command as a reader would: wait for the URL it prints, fetch the page,
    press Ctrl-C (SIGINT to its process group); it must stop cleanly. ``BROWSER=true`` makes
    ``--open`` harmless."""
    import signal
    import time
    import urllib.request

    def as_from_a_terminal():  # pytest-xdist's workers ignore SIGINT; children inherit it
        signal.signal(signal.SIGINT, signal.SIG_DFL)

    process = subprocess.Popen(["bash", "-c", command], cwd=work, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               env={**_environment(True), "BROWSER": "true",
                                    "PYTHONUNBUFFERED": "1"},
                               start_new_session=True, preexec_fn=as_from_a_terminal)
    problems, lines, found, end = [], [], None, time.monotonic() + 120
    try:
        while found is None and time.monotonic() < end:
            line = process.stdout.readline()
            if not line:
                break
            lines.append(line)
            found = re.search(r"http://127\.0\.0\.1:\d+/", line)
        if found is None:
            problems.append("printed no URL")
        else:
            with urllib.request.urlopen(found.group(0), timeout=60) as page:
                if b"<title>labkit playground</title>" not in page.read():
                    problems.append("the URL it printed does not serve the page")
        os.killpg(process.pid, signal.SIGINT)
        rest, _ = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    output = "".join(lines) + (rest or "")
    if "stopped" not in output or "Traceback" in output:
        problems.append(f"did not stop cleanly on Ctrl-C:\n{output[-2000:]}")
    if command.startswith("labkit") and process.returncode != 0:
        problems.append(f"exit {process.returncode} after Ctrl-C")
    return problems


def _run_python(text: str, work: Path) -> subprocess.CompletedProcess:
    """A Python block, run where a reader would: an export's snippet inside that export's
    folder with ``x`` the run's kept raw examples, any other in the scratch folder."""
    from labkit.formats import FORMATS

    folders = {f.file: f.name for f in FORMATS.values()}  # model file → its export folder
    opened = re.search(r'\("(' + "|".join(map(re.escape, folders)) + r')"\)', text)
    cwd, prelude = work, ""
    if opened and "runs/" not in text:
        cwd = work / "runs" / "cats-convnet" / "export" / folders[opened.group(1)]
        samples = work / "runs" / "cats-convnet" / "samples.npz"
        prelude = f"import numpy as np\nx = np.load({str(samples)!r})['x'][:4].astype('float32')\n"
    return subprocess.run([sys.executable, "-c", prelude + text], cwd=cwd, env=_environment(True),
                          capture_output=True, text=True, timeout=900)


@pytest.mark.parametrize("doc", [p.name for p in DOCS
                                 if any(lang in ("bash", "python") for lang, _ in examples(p))])
def test_every_example_runs_as_written(scratch, doc):
    """Each document's examples, in order, as a reader pasting them would run them."""
    path = next(p for p in DOCS if p.name == doc)
    problems, ran = [], 0
    for language, text in examples(path):
        if language == "python":
            result = _run_python(text, scratch)
            ran += 1
            if result.returncode != 0:
                problems.append(f"python block:\n{text}\n{(result.stdout + result.stderr)[-3000:]}")
            continue
        if language != "bash":
            continue
        for command in shell_lines(text):
            if _matching(NOT_HERE, command):
                continue
            serves = command.startswith(SERVES)
            if command.startswith("make "):  # the checkout's Makefile, writing into scratch
                command = f"make -C {ROOT} LABS_OUT={scratch / 'labs'} {command[5:]}"
            if serves:
                ran += 1
                problems += [f"{command}\n  {p}" for p in _serve_and_stop(command, scratch)]
                continue
            result = subprocess.run(["bash", "-c", command], cwd=scratch, capture_output=True,
                                    text=True, timeout=1200,
                                    env=_environment(not STATED.search(command)))
            ran += 1
            problems += [f"{command}\n  {p}" for p in _check(command, result, scratch)]
    assert ran, f"{doc} has no example to run"
    assert not problems, "\n\n".join(problems)


def test_the_list_of_commands_not_run_here_is_short_and_current():
    """Each exemption names a command the docs still show, and they stay few."""
    shown = [c for p in DOCS for lang, text in examples(p) if lang == "bash"
             for c in shell_lines(text)]
    for start in NOT_HERE:
        assert any(c.startswith(start) for c in shown), f"{start!r} is no longer in the docs"
    assert len(NOT_HERE) <= 8
    for start in EXPECT:
        assert any(c.startswith(start) for c in shown), f"{start!r} is no longer in the docs"
