"""``labkit export`` (labkit.export): every format of the registry (labkit.formats) written,
loaded by its own runtime and compared with the Keras model on the run's kept raw examples; the
model card's snippet runs; a failing export is removed. A format added to the registry is
tested here without touching this file."""

import json
import os

import numpy as np
import pytest
from helpers import error_line

from labkit import export, formats, layout
from labkit.errors import LabkitError

FORMATS = list(formats.FORMATS)


@pytest.fixture(scope="module")
def exported(digits_run, tmp_path_factory):
    """Every format of the digits run, in one folder each."""
    root = tmp_path_factory.mktemp("exports")
    results = export.export(digits_run.path, "all", str(root))
    return root, {r["format"]: r for r in results}


def test_training_keeps_raw_examples_for_exports(digits_run):
    x, y = digits_run.samples()
    assert x.shape == (256, 8, 8, 1) and x.max() > 1  # raw pixel values, not scaled
    assert len(y) == 256


@pytest.mark.parametrize("fmt", FORMATS)
def test_each_format_matches_keras_in_its_runtime(exported, fmt):
    root, results = exported
    folder = root / fmt
    assert (folder / formats.get(fmt).file).exists()
    parity = json.loads((folder / "parity.json").read_text())
    assert parity["examples"] == 256 and parity["max_abs_diff"] <= export.TOLERANCE
    card = json.loads((folder / "labkit.json").read_text())
    assert card["format"] == fmt and card["task"] == "classification"
    assert card["input"]["shape"] == [None, 8, 8, 1]
    assert card["preprocessing_inside"] == ["Rescaling (inputs × 1/16)"]
    assert card["class_names"] == [str(i) for i in range(10)]
    assert formats.get(fmt).snippet in (folder / "README.md").read_text()


@pytest.mark.parametrize("fmt", FORMATS)
def test_the_model_cards_three_lines_run_without_labkit(exported, digits_run, fmt):
    root, _ = exported
    x, _ = digits_run.samples()
    here = os.getcwd()
    os.chdir(root / fmt)
    try:
        scope = {"x": x[:5]}
        exec(formats.get(fmt).snippet, scope)  # noqa: S102  the documented snippet, as a user runs it
    finally:
        os.chdir(here)
    import keras

    expected = keras.models.load_model(digits_run.file(layout.MODEL)).predict(x[:5], verbose=0)
    np.testing.assert_allclose(np.asarray(scope["outputs"]), expected, atol=export.TOLERANCE)


def test_the_readme_shows_the_registrys_table_and_every_snippet():
    from pathlib import Path

    readme = (Path(__file__).parent.parent / "README.md").read_text()
    assert formats.markdown_table() in readme
    for fmt in formats.FORMATS.values():
        assert fmt.snippet in readme, fmt.name


def test_the_cli_offers_exactly_the_registrys_formats():
    from labkit.cli import main

    option = next(p for p in main.commands["export"].params if p.name == "fmt")
    assert list(option.type.choices) == [*formats.FORMATS, formats.ALL]


@pytest.mark.slow
def test_quantized_litert_agrees_on_the_top_class_and_reports_accuracy(tmp_path):
    """A trained model (15 epochs: a barely trained one has near ties that int8 flips, which
    the check then refuses)."""
    import labkit

    run = labkit.train("cnn", dataset="digits", epochs=15, runs_dir=str(tmp_path), name="cnn",
                       echo=lambda _: None)
    for quantize in export.QUANTIZE:
        [result] = export.export(run.path, "litert", str(tmp_path / quantize),
                                 quantize=quantize)
        assert result["agreement"] >= export.AGREEMENT, quantize
        assert abs(result["accuracy_export"] - result["accuracy_keras"]) <= 0.02, quantize


def test_a_disagreeing_export_is_removed_and_names_the_worst_example(digits_run, tmp_path,
                                                                      monkeypatch):
    import dataclasses

    onnx = formats.get("onnx")

    def perturbed(target):
        run = onnx.load(target)
        return lambda x: run(x) + np.where(np.arange(len(x)) == 7, 0.5, 0.0)[:, None]

    monkeypatch.setitem(formats.FORMATS, "onnx", dataclasses.replace(onnx, load=perturbed))
    with pytest.raises(LabkitError, match="The onnx export disagrees with the Keras model: "
                                          "example 7 differs by 0.5"):
        export.export(digits_run.path, "onnx", str(tmp_path / "bad"))
    assert not (tmp_path / "bad").exists() and not (tmp_path / ".bad.tmp").exists()


def test_an_older_run_without_kept_examples_loads_its_data(digits_run, tmp_path):
    import shutil

    old = tmp_path / "old"
    shutil.copytree(digits_run.path, old)
    (old / layout.SAMPLES).unlink()
    [result] = export.export(old, "keras", str(tmp_path / "k"))
    assert result["examples"] == 256 and result["max_abs_diff"] <= export.TOLERANCE


@pytest.mark.parametrize(("args", "line"), [
    (["--format", "keras", "--quantize", "int8"], "Error: --quantize applies to --format litert."),
    (["--format", "keras", "--output", "{existing}"],
     "Error: {existing} exists and is not empty; choose another --output or pass --force to "
     "replace it."),
])
def test_bad_export_options(cli, digits_run, tmp_path, args, line):
    existing = tmp_path / "taken"
    existing.mkdir()
    (existing / "file").write_text("keep me")
    args = [a.replace("{existing}", str(existing)) for a in args]
    result = cli("export", digits_run.path, *args)
    assert result.exit_code == 1
    assert error_line(result) == line.replace("{existing}", str(existing))
    assert (existing / "file").read_text() == "keep me"


def test_labkit_export_prints_each_check(cli, digits_run, tmp_path):
    result = cli("export", digits_run.path, "--format", "savedmodel", "--output", tmp_path / "s")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"Exported savedmodel → {tmp_path / 's' / 'savedmodel'} "
                                    "(checked on 256 examples, max |difference| ")


def test_the_onnx_export_records_its_opset(exported):
    root, _ = exported
    assert json.loads((root / "onnx" / "labkit.json").read_text())["opset"] >= 13


def test_a_missing_runtime_package_names_the_install_command(cli, digits_run, monkeypatch):
    import dataclasses

    monkeypatch.setitem(formats.FORMATS, "onnx", dataclasses.replace(
        formats.get("onnx"), packages=("no_such_runtime_package",)))
    result = cli("export", digits_run.path, "--format", "onnx")
    assert error_line(result) == ('Error: --format onnx needs no_such_runtime_package: '
                                  'pip install -e ".[export]"')
