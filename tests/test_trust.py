"""Untrusted model files: refused before Keras deserialises anything (labkit.trust)."""

import json
import os
import zipfile

import keras
import numpy as np
import pytest
from helpers import error_line

from labkit import layout, runs, trust
from labkit.errors import LabkitError


def small_model(extra=None):
    inputs = keras.Input((4,))
    x = keras.layers.Dense(3, name="hidden")(inputs)
    if extra is not None:
        x = extra(x)
    return keras.Model(inputs, keras.layers.Dense(2, name="out")(x), name="net")


def rewrite_config(path, change):
    """A copy of the .keras archive at ``path`` with its config.json passed through ``change``."""
    crafted = path.with_name("crafted.keras")
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(crafted, "w") as target:
        for item in source.infolist():
            data = source.read(item)
            if item.filename == "config.json":
                data = json.dumps(change(json.loads(data))).encode()
            target.writestr(item, data)
    return crafted


def test_a_lambda_layer_is_refused_and_its_code_never_runs(tmp_path, monkeypatch):
    marker = tmp_path / "ran"

    def touch(x):
        marker.touch()
        return x

    path = tmp_path / "lambda.keras"
    small_model(keras.layers.Lambda(touch, name="sneaky")).save(path)
    marker.unlink()  # building the model ran it; loading must not
    monkeypatch.setattr(keras.models, "load_model", lambda *a, **k: pytest.fail("deserialised"))
    with pytest.raises(LabkitError) as info:
        trust.load_keras(path)
    assert str(info.value).startswith(
        f"{path} is not trusted: it contains a Lambda layer, which carries Python code at "
        "/net/sneaky; an object from module 'builtins' at /net/sneaky/function.")
    assert str(info.value).endswith("labkit loads only models made of Keras's own layers and "
                                    "labkit's.")
    assert not marker.exists()


def test_foreign_modules_and_tfsmlayers_are_refused(tmp_path):
    path = tmp_path / "plain.keras"
    small_model().save(path)
    assert isinstance(trust.load_keras(path), keras.Model)

    def foreign(config):
        layer = config["config"]["layers"][1]
        layer["module"], layer["class_name"] = "os", "system"
        return config

    with pytest.raises(LabkitError, match="an object from module 'os' at /net/hidden"):
        trust.load_keras(rewrite_config(path, foreign))

    def saved_model(config):
        config["config"]["layers"][1]["class_name"] = "TFSMLayer"
        return config

    with pytest.raises(LabkitError, match="a TFSMLayer, which loads an external TensorFlow"):
        trust.load_keras(rewrite_config(path, saved_model))

    def registered(config):
        config["config"]["layers"][1]["registered_name"] = "evil>Payload"
        return config

    with pytest.raises(LabkitError, match="a custom object 'evil>Payload'"):
        trust.load_keras(rewrite_config(path, registered))


def test_damaged_files_and_old_keras_are_errors(tmp_path, monkeypatch):
    path = tmp_path / "model.keras"
    small_model().save(path)
    cut = tmp_path / "cut.keras"
    cut.write_bytes(path.read_bytes()[:200])
    with pytest.raises(LabkitError, match="is damaged or not a Keras model file"):
        trust.load_keras(cut)
    monkeypatch.setattr(keras, "__version__", "3.8.0")
    with pytest.raises(LabkitError) as info:
        trust.load_keras(path)
    assert "CVE-2025-1550" in str(info.value)
    assert str(info.value).endswith("Upgrade: pip install -U 'keras>=3.15.1'")
    assert trust.keras_version_ok("3.15.1") and trust.keras_version_ok("3.16.0.dev2026")
    assert not trust.keras_version_ok("3.14.1") and not trust.keras_version_ok("3.15.0")
    assert not trust.keras_version_ok("3.11.3")


def test_a_run_with_an_untrusted_model_is_refused_by_every_command(cli, digits_run, tmp_path):
    import shutil

    copy = tmp_path / "shared"
    shutil.copytree(digits_run.path, copy)
    model = copy / layout.MODEL

    def sneak(config):
        config["config"]["layers"][-1]["class_name"] = "Lambda"
        return config

    rewrite_config(model, sneak).replace(model)
    for command in (["evaluate", copy], ["export", copy], ["explain", copy, "--method",
                                                           "filters"]):
        result = cli(*command)
        assert result.exit_code == 1
        assert error_line(result).startswith(f"Error: {model} is not trusted: it contains a "
                                             "Lambda layer"), error_line(result)
    assert isinstance(runs.load_model(digits_run), keras.Model)


@pytest.mark.parametrize("config, message", [
    ("recipe: mlp\nepochs: 1000000000\n", "--epochs must be an integer <= 100000 (a larger "
                                           "value is surely a typo). Received: 1000000000"),
    ("recipe: mlp\nbatch_size: 0\n", '--batch-size must be an integer >= 1 or "full"'),
    ("recipe: mlp\nbatch_size: 10000000\n", "--batch-size must be an integer <= 1000000"),
    ("recipe: cnn\ndataset: FOLDER\ndata_options: {image_size: 100000x100000}\n",
     "--image-size is HEIGHTxWIDTH in pixels (1 to 4096)"),
    ("recipe: rm_rf\n", "Unknown recipe 'rm_rf'"),
    ("recipe: mlp\nname: ../../escaped\n", "--name"),
    ("recipe: mlp\nepochs: !!python/object/apply:os.system ['touch PWNED']\n",
     "is malformed"),
])
def test_config_files_are_data_checked_like_flags(cli, tmp_path, config, message):
    from test_images import write_images

    write_images(tmp_path / "pets" / "cats", 2, bright=False)
    write_images(tmp_path / "pets" / "dogs", 2, bright=True)
    path = tmp_path / "config.yaml"
    path.write_text(config.replace("FOLDER", str(tmp_path / "pets")))
    result = cli("train", "--config", path, "--runs-dir", tmp_path / "runs")
    assert result.exit_code != 0
    assert message in error_line(result)
    assert not (tmp_path / "runs").exists() and not (tmp_path / "PWNED").exists()
    assert not (tmp_path.parent / "escaped").exists()


def test_npz_files_with_objects_or_too_big_are_refused(cli, digits_run, tmp_path):
    crafted = tmp_path / "crafted.npz"
    np.savez(crafted, x=np.array([{"a": 1}, None], dtype=object), y=np.array([0, 1]))
    result = cli("train", "mlp", "--dataset", crafted, "--runs-dir", tmp_path / "runs")
    assert error_line(result) == (
        f"Error: {crafted} holds Python objects (pickled arrays), which could run code when "
        "read; labkit reads only plain numeric arrays.")
    result = cli("predict", digits_run.path, crafted)
    assert "holds Python objects" in error_line(result)
    plain = tmp_path / "plain.npz"
    np.savez(plain, x=np.zeros((100, 8, 8)), y=np.zeros(100))
    with pytest.raises(LabkitError, match="over labkit's limit"):
        trust.load_npz(plain, limit=1000)
    assert trust.load_npz(plain)["x"].shape == (100, 8, 8)


def test_run_files_follow_the_umask(digits_run):
    mask = os.umask(0)
    os.umask(mask)
    for name in ("config.json", "metrics.json", "history.csv", "model.keras", "last.keras"):
        assert (digits_run.file(name).stat().st_mode & 0o777) == 0o666 & ~mask, name


def test_atomic_writes_take_the_umask_without_touching_it(tmp_path, monkeypatch):
    from labkit import files

    def refuse(*args):
        raise AssertionError("os.umask called: it changes the mask for every thread")

    previous = os.umask(0o027)
    try:
        monkeypatch.setattr(os, "umask", refuse)
        files.write_text(tmp_path / "a.txt", "x")
        with files.atomic_path(tmp_path / "b.keras") as tmp:
            tmp.write_bytes(b"y")
    finally:
        monkeypatch.undo()
        os.umask(previous)
    assert (tmp_path / "a.txt").stat().st_mode & 0o777 == 0o640
    assert (tmp_path / "b.keras").stat().st_mode & 0o777 == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt", "b.keras"]


def test_explain_file_names_stay_inside_the_output_folder(tmp_path):
    from labkit.explain import output_stem

    assert output_stem("../../etc/passwd.png") == "passwd"
    assert output_stem("..evil.png") == "evil"
    assert output_stem("a/b/../c d.jpg") == "c_d"
    assert output_stem("digits.npz[3]") == "digits_npz_3"


def _hostile(tmp_path, name, build):
    import h5py

    path = tmp_path / name
    with h5py.File(path, "w") as f:
        build(f)
    return path


def test_hostile_weights_files_are_refused_before_keras_reads_them(notop_weights, tmp_path):
    """Each file is built with h5py as an attacker would; the link targets do not exist, so a
    check that followed one would fail otherwise than with the refusal."""
    import h5py

    good, base = notop_weights
    trust.check_weights_file(good, base)  # Keras's own notop layout passes
    kernel = tuple(base.weights[0].shape)
    largest = max((tuple(w.shape) for w in base.weights), key=lambda shape: np.prod(shape))
    outside = tmp_path / "elsewhere" / "secrets.h5"
    source = _hostile(tmp_path, "source.h5", lambda f: f.create_dataset("x", data=np.zeros(4)))

    def virtual(f):
        layout = h5py.VirtualLayout(shape=(4,), dtype="float64")
        layout[:] = h5py.VirtualSource(str(source), "x", shape=(4,))
        f.create_virtual_dataset("block1_conv1/kernel", layout)

    cases = {
        "external.h5": (lambda f: f.__setitem__("block1_conv1", h5py.ExternalLink(
            str(outside), "/kernel")), f"/block1_conv1 is a link to '{outside}', another file"),
        "soft.h5": (lambda f: (f.create_dataset("a", shape=kernel, dtype="float32"),
                               f.__setitem__("b", h5py.SoftLink("/a"))),
                    "/b is a soft link (to /a)"),
        "virtual.h5": (virtual, "/block1_conv1/kernel is a virtual dataset"),
        "bomb.h5": (lambda f: f.create_dataset("w", shape=(10**6, 10**6), dtype="float32",
                                                chunks=(1, 1024)),
                    "/w has shape (1000000, 1000000), which no variable of the model has"),
        "many.h5": (lambda f: [f.create_dataset(f"w{i}", shape=largest, dtype="float32",
                                                chunks=True) for i in range(20)],
                    "it declares over"),
    }
    for name, (build, reason) in cases.items():
        path = _hostile(tmp_path, name, build)
        assert path.stat().st_size < 2 * 2**20  # small files that declare much
        with pytest.raises(LabkitError) as info:
            trust.check_weights_file(path, base)
        assert str(info.value).startswith(f"{path} is refused as a weights file: ")
        assert reason in str(info.value), (name, str(info.value))
    assert not outside.parent.exists()


def test_a_hostile_weights_file_stops_the_vgg16_recipe_with_one_error_line(cli, tmp_path):
    import h5py

    path = tmp_path / "vgg16_notop.h5"
    with h5py.File(path, "w") as f:
        f["block1_conv1"] = h5py.ExternalLink("/etc/passwd.h5", "/kernel")
    result = cli("describe", "vgg16_transfer", "--input-shape", "32x32x3", "--set",
                 f"weights={path}")
    assert error_line(result) == (f"Error: {path} is refused as a weights file: /block1_conv1 "
                                  "is a link to '/etc/passwd.h5', another file. A weights file "
                                  "holds only the model's own arrays.")
