"""The course's notebooks: current with their sources, written by `labkit notebook`, and — slow —
executed top to bottom in a fresh kernel of this environment, plus what a student does in a
kernel: interrupt a training, resume it, run a cell twice, see figures inline."""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

import pytest
from helpers import error_line

from labkit import notebooks
from labkit.labs._kit import HOLDS, INCONCLUSIVE, NOT_SHOWN

VERDICT = re.compile(r"<p><b>(.*?)</b></p>", re.S)
TF_NOISE = ("oneDNN", "absl::InitializeLog", "cuInit", "cuda_")
# Where the rendered notebook's screenshot goes: `make pictures` names a folder (the README's
# picture); otherwise nothing is rendered.
ARTIFACTS = os.environ.get("LABKIT_ARTIFACTS")


def test_every_notebook_is_current_with_its_source():
    assert notebooks.stale() == [], "run `make notebooks`"


def test_every_source_is_registered_and_every_notebook_is_clean():
    import nbformat

    sources = sorted(p.stem for p in notebooks.HERE.glob("*.py") if not p.name.startswith("_"))
    assert sources == sorted(n.stem for n in notebooks.NOTEBOOKS.values())
    for entry in notebooks.NOTEBOOKS.values():
        book = nbformat.read(entry.packaged, as_version=4)
        nbformat.validate(book)
        assert book.cells[0].cell_type == "markdown" and book.cells[0].source.startswith("# ")
        assert all(not c.get("outputs") for c in book.cells if c.cell_type == "code")
        assert any("**Try it:**" in c.source for c in book.cells), entry.name


def test_notebook_lists_writes_and_keeps_a_students_copy(cli, tmp_path):
    listed = cli("notebook")
    assert listed.exit_code == 0
    assert [line.split()[0] for line in listed.stdout.splitlines()] == list(notebooks.NOTEBOOKS)
    written = cli("notebook", "optimisation", "--out", tmp_path / "course")
    target = tmp_path / "course" / "1-optimisation.ipynb"
    assert written.exit_code == 0 and f"Wrote {target}" in written.stdout
    assert target.read_bytes() == notebooks.get("optimisation").packaged.read_bytes()
    target.write_text("a student's work")
    again = cli("notebook", "all", "--out", tmp_path / "course")
    assert again.exit_code == 1
    assert error_line(again) == (f"Error: {target} already exists (your work?); pass --force to "
                                 "replace it, or another --out.")
    assert target.read_text() == "a student's work"
    forced = cli("notebook", "all", "--out", tmp_path / "course", "--force")
    assert forced.exit_code == 0
    assert sorted(p.name for p in (tmp_path / "course").iterdir()) == sorted(
        n.packaged.name for n in notebooks.NOTEBOOKS.values())
    unknown = cli("notebook", "optimization", "--out", tmp_path)
    assert error_line(unknown).startswith(
        "Error: Unknown notebook 'optimization'. Did you mean: optimisation?")


def test_the_package_ships_the_notebooks():
    import tomllib

    project = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())
    assert "notebooks/*.ipynb" in project["tool"]["setuptools"]["package-data"]["labkit"]


def test_a_tfds_dataset_counts_as_prepared_only_when_it_is_on_disk(tmp_path):
    import tensorflow_datasets as tfds

    from labkit.data.tfds import prepared

    assert not prepared("mnist", str(tmp_path))
    tfds.testing.DummyMnist(data_dir=str(tmp_path)).download_and_prepare()
    assert prepared("dummy_mnist", str(tmp_path))


def test_labkit_figures_and_lab_outcomes_draw_themselves_in_a_notebook(tmp_path):
    import pandas as pd

    import labkit
    from labkit import plots

    figure = plots.curves_figure(pd.DataFrame({"epoch": [1, 2], "loss": [1.0, 0.5],
                                               "val_loss": [1.1, 0.7]}))
    assert figure._repr_png_().startswith(b"\x89PNG")  # what IPython shows, no pyplot needed
    outcome = labkit.labs.run("convolution", quick=True, out=tmp_path, show_progress=False)
    shown = outcome._repr_html_()
    assert VERDICT.search(shown).group(1) == outcome.verdict.replace("'", "&#x27;")
    assert 'src="data:image/png;base64,' in shown and str(outcome) == outcome.verdict


def test_a_loop_of_runs_can_be_silent_and_resume_takes_no_options(tmp_path, capsys):
    import labkit
    from labkit.errors import LabkitError

    run = labkit.train("mlp", dataset="xor", epochs=2, units=[4], runs_dir=str(tmp_path),
                       echo=None)
    assert capsys.readouterr().out == "" and run.metrics["status"] == "completed"
    with pytest.raises(LabkitError, match=r"^resume continues a run with its saved config; "
                                          r"drop epochs\.$"):
        labkit.train(resume=run.path, epochs=3)


def test_tensorflow_info_lines_and_keras_per_model_retracing_stay_out_of_a_notebook():
    """TensorFlow logs INFO in interactive sessions ("Assets written to …" on every export) and
    warns of retracing when labkit builds a model per call; other warnings pass."""
    import logging

    from labkit._startup import _Expected

    def record(level, message):
        return logging.LogRecord("tensorflow", level, __file__, 1, message, None, None)

    keep = _Expected().filter
    assert not keep(record(logging.INFO, "Assets written to: exported/savedmodel/assets"))
    assert not keep(record(logging.WARNING, "5 out of the last 5 calls to <function TensorFlow"
                           "Trainer.make_predict_function.<locals>.one_step_on_data_distributed"
                           " at 0x7f> triggered tf.function retracing."))
    assert keep(record(logging.WARNING, "5 out of the last 5 calls to <function my_step at 0x7f>"
                       " triggered tf.function retracing."))
    assert keep(record(logging.WARNING, "Compiled the loaded model, but the compiled metrics "
                       "have yet to be built."))


# ---- executed in a kernel (slow) ---------------------------------------------------------------

def _kernel(cwd: Path):
    from jupyter_client.manager import start_new_kernel

    env = {**os.environ, "LABKIT_MAX_EPOCHS": "", "MPLBACKEND": ""}
    env.pop("MPLBACKEND")  # a notebook's own inline backend, as a student gets it
    return start_new_kernel(kernel_name="python3", cwd=str(cwd), env=env, startup_timeout=120)


def _execute(kc, code: str, timeout: float = 300, wait=None) -> tuple[list[dict], dict]:
    """Run ``code`` in the kernel; its iopub outputs and the execute reply. ``wait`` is called
    once the code is sent (e.g. to interrupt it)."""
    msg_id = kc.execute(code)
    if wait is not None:
        wait()
    outputs, deadline = [], time.monotonic() + timeout
    while True:
        message = kc.get_iopub_msg(timeout=max(1, deadline - time.monotonic()))
        if message["parent_header"].get("msg_id") != msg_id:
            continue
        kind, content = message["msg_type"], message["content"]
        if kind == "status" and content["execution_state"] == "idle":
            break
        if kind in ("stream", "execute_result", "display_data", "error"):
            outputs.append({"type": kind, **content})
    return outputs, kc.get_shell_msg(timeout=60)["content"]


def _text(outputs: list[dict]) -> str:
    return "".join(o.get("text", "") or o.get("data", {}).get("text/plain", "") for o in outputs)


@pytest.mark.slow  # one kernel: a run interrupted and resumed, a cell twice, a figure: ~60 s
def test_in_a_kernel_interrupt_resume_rerun_and_inline_figures(tmp_path):
    km, kc = _kernel(tmp_path)
    try:
        outputs, reply = _execute(kc, "import signal, matplotlib, labkit\n"
                                      "handler = signal.getsignal(signal.SIGINT)\n"
                                      "backend = matplotlib.get_backend()")
        assert reply["status"] == "ok", outputs
        history = tmp_path / "runs" / "long" / "history.csv"

        def interrupt_after_a_few_epochs():
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                if history.exists() and len(history.read_text().splitlines()) > 3:
                    break
                time.sleep(0.1)
            km.interrupt_kernel()

        outputs, reply = _execute(kc, 'run = labkit.train("mlp", dataset="digits", epochs=150, '
                                      'units=[64], name="long")',
                                  wait=interrupt_after_a_few_epochs)
        assert reply["status"] == "error" and reply["ename"] == "Interrupted"
        error = next(o for o in outputs if o["type"] == "error")
        metrics = json.loads((tmp_path / "runs" / "long" / "metrics.json").read_text())
        kept = metrics["epochs_completed"]  # what last.keras holds: the row being written may go
        assert metrics["status"] == "interrupted" and 2 <= kept < 150
        assert error["traceback"] == [  # the message, no traceback
            f"Interrupted; runs/long keeps epochs 1–{kept} (in last.keras).",
            "Resume with: labkit.train(resume='runs/long')"]
        assert not any("\r" in o.get("text", "") for o in outputs)  # lines, not redraws

        # the kernel is usable, its own Ctrl-C handling and backend are back
        outputs, reply = _execute(kc, "signal.getsignal(signal.SIGINT) is handler, "
                                      "matplotlib.get_backend() == backend")
        assert _text(outputs) == "(True, True)"

        outputs, reply = _execute(kc, 'run = labkit.train(resume="runs/long", echo=None)\n'
                                      "run.history['epoch'].tolist() == list(range(1, 151)), "
                                      "run.metrics['status']")
        assert reply["status"] == "ok", outputs
        assert _text(outputs) == "(True, 'completed')"

        # the same cell twice: a second run directory, not an error
        cell = 'labkit.train("mlp", dataset="xor", epochs=1, name="again", echo=None).path.name'
        first, _ = _execute(kc, cell)
        second, _ = _execute(kc, cell)
        assert (_text(first), _text(second)) == ("'again'", "'again-2'")

        # a labkit figure shows inline by itself, as PNG
        outputs, reply = _execute(kc, "run.plot()")
        assert "image/png" in outputs[-1]["data"]
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


@pytest.mark.slow  # each notebook top to bottom in a fresh kernel: 1-2 min each
@pytest.mark.parametrize("name", list(notebooks.NOTEBOOKS))
def test_every_notebook_runs_top_to_bottom_offline(name, tmp_path):
    import nbclient
    import nbformat

    book = nbformat.read(notebooks.get(name).packaged, as_version=4)
    env_before = dict(os.environ)
    # the kernel inherits it: every training cut short, except for the README's picture
    os.environ["LABKIT_MAX_EPOCHS"] = "" if ARTIFACTS else "3"
    os.environ.pop("MPLBACKEND", None)
    try:
        client = nbclient.NotebookClient(book, timeout=600, kernel_name="python3",
                                         resources={"metadata": {"path": str(tmp_path)}})
        client.execute()  # a cell that raises fails the test here
    finally:
        os.environ.clear()
        os.environ.update(env_before)
    outputs = [o for cell in book.cells if cell.cell_type == "code" for o in cell.outputs]
    streams = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert "\r" not in streams  # progress as whole lines in a saved notebook
    assert not [noise for noise in TF_NOISE if noise in streams], streams[:2000]
    verdicts = [VERDICT.search(o.data["text/html"]).group(1) for o in outputs
                if "text/html" in o.get("data", {}) and VERDICT.search(o.data["text/html"])]
    labs_called = sum(c.source.count("labkit.labs.run(") for c in book.cells)
    assert len(verdicts) == labs_called
    for verdict in verdicts:  # quick labs at a 3-epoch cap: inconclusive is an honest answer
        assert verdict.endswith(HOLDS) or f"— {INCONCLUSIVE}" in verdict, verdict
        assert NOT_SHOWN not in verdict
    for cell in book.cells:
        if cell.cell_type == "code" and cell.source.rstrip().endswith(".plot()"):
            assert any("image/png" in o.get("data", {}) for o in cell.outputs), cell.source
    if ARTIFACTS and name == "optimisation":
        _screenshot(book, Path(ARTIFACTS) / "notebook.png")


def _screenshot(book, path: Path) -> None:
    """The executed notebook as nbconvert's HTML, in headless Chromium, at its first lab."""
    from nbconvert import HTMLExporter
    from test_playground_browser import chromium

    html = path.with_suffix(".html")
    html.write_text(HTMLExporter().from_notebook_node(book)[0], encoding="utf-8")
    browser = chromium()
    try:
        browser.set_window_size(1100, 1300)
        browser.get(html.resolve().as_uri())
        browser.execute_script("document.querySelectorAll('.jp-OutputArea-output img')[1]"
                               ".scrollIntoView({block: 'center'});")
        time.sleep(0.5)
        browser.save_screenshot(str(path))
    finally:
        browser.quit()
