"""What the network sees (labkit.explain): Grad-CAM against a hand computation and on a set
where the evidence has a known place, feature maps, filter patterns, nested layers, errors, and
evaluate's pictures."""

import json
from pathlib import Path

import keras
import numpy as np
import pytest
from helpers import error_line

import labkit
from labkit import explain, runs
from labkit.errors import LabkitError


def tiny_model():
    """conv (2 channels, 1×1) → global average → one sigmoid unit, with known weights."""
    inputs = keras.Input((4, 4, 1))
    features = keras.layers.Conv2D(2, 1, use_bias=False, name="conv")(inputs)
    pooled = keras.layers.GlobalAveragePooling2D()(features)
    outputs = keras.layers.Dense(1, activation="sigmoid", name="predictions")(pooled)
    model = keras.Model(inputs, outputs)
    model.get_layer("conv").set_weights([np.array([[[[1.0, -1.0]]]], "float32")])
    model.get_layer("predictions").set_weights([np.array([[2.0], [0.5]], "float32"),
                                                np.zeros(1, "float32")])
    return model


def test_gradcam_matches_the_hand_computation():
    """Class 1's score is σ(z), z = mean(2·F₀ + 0.5·F₁): each channel's weight is σ'(z)·w_k/16,
    so the map is relu(2·F₀ + 0.5·F₁) up to a positive factor, which the normalisation
    removes."""
    x = np.arange(16, dtype="float32").reshape(1, 4, 4, 1) / 16 - 0.3
    maps, scores, classes = explain.gradcam(tiny_model(), x, class_index=1, task="binary")
    f0, f1 = x[0, ..., 0], -x[0, ..., 0]
    expected = np.maximum(2 * f0 + 0.5 * f1, 0)
    np.testing.assert_allclose(maps[0], expected / expected.max(), atol=1e-5)
    assert classes[0] == 1 and 0.5 < scores[0] < 1
    complement, _, _ = explain.gradcam(tiny_model(), x, class_index=0, task="binary")
    flipped = np.maximum(-(2 * f0 + 0.5 * f1), 0)
    np.testing.assert_allclose(complement[0], flipped / flipped.max(), atol=1e-5)


@pytest.fixture(scope="module")
def patch_run(tmp_path_factory):
    """A cnn trained on 16×16 noise with a bright 4×4 patch; the quadrant it is in is the
    class."""
    rng = np.random.default_rng(0)
    n = 600
    x = rng.integers(0, 60, (n, 16, 16), dtype=np.uint8)
    y = rng.integers(0, 4, n)
    for image, label in zip(x, y, strict=True):
        row, col = 8 * (label // 2) + rng.integers(1, 4), 8 * (label % 2) + rng.integers(1, 4)
        image[row:row + 4, col:col + 4] = 250
    path = tmp_path_factory.mktemp("npz") / "patches.npz"
    np.savez(path, x=x, y=y)
    run = labkit.train("cnn", dataset=str(path), epochs=6, filters=[8, 16],
                       runs_dir=str(tmp_path_factory.mktemp("runs")), name="patches",
                       echo=lambda _: None)
    return run, x, y


def test_the_heatmap_falls_where_the_class_signal_is(patch_run):
    run, x, y = patch_run
    model = runs.unwrap(run.model)
    images = x[-120:, ..., None].astype("float32") / 255
    maps, _, classes = explain.gradcam(model, images)  # the last conv layer, block2_conv
    peaks = np.array([np.unravel_index(m.argmax(), m.shape) for m in maps])
    quadrant = (peaks[:, 0] >= 8) * 2 + (peaks[:, 1] >= 8)
    assert (classes == y[-120:]).mean() >= 0.9  # it learnt the task
    assert (quadrant == y[-120:]).mean() >= 0.8  # measured 0.93


def test_feature_maps_have_each_layers_channels(patch_run):
    run, x, _ = patch_run
    model = runs.unwrap(run.model)
    found = explain.activations(model, x[0, ..., None].astype("float32") / 255)
    assert list(found) == explain.spatial_layers(model)
    assert found["block1_conv"].shape == (16, 16, 8) and found["block2_pool"].shape[-1] == 16


def test_filter_ascent_raises_each_filters_activation(patch_run):
    run, _, _ = patch_run
    patterns, start, end = explain.filter_patterns(runs.unwrap(run.model), "block1_conv",
                                                   filters=4, steps=10)
    assert patterns.shape == (4, 16, 16, 1) and (patterns >= 0).all() and (patterns <= 1).all()
    assert (end > start).all()


def test_layers_inside_a_nested_base_are_found_and_explained():
    model = labkit.build("vgg16_transfer", input_shape=(32, 32, 3), num_classes=2, task="binary",
                         weights="none")
    assert explain.resolve_layer(model) == "vgg16/block5_conv3"
    assert explain.resolve_layer(model, "block5_conv3") == "vgg16/block5_conv3"
    images = np.random.default_rng(0).uniform(size=(2, 32, 32, 3)).astype("float32")
    maps, _, _ = explain.gradcam(model, images, layer="block4_conv3", task="binary")
    assert maps.shape == (2, 32, 32) and 0 <= maps.min() and maps.max() <= 1


def test_models_without_spatial_layers_and_unknown_layers_are_errors(patch_run):
    mlp = labkit.build("mlp", input_shape=(8, 8, 1), num_classes=3)
    with pytest.raises(LabkitError, match="has no convolutional \\(spatial\\) layers: Grad-CAM"):
        explain.gradcam(mlp, np.zeros((1, 8, 8, 1), "float32"))
    run, _, _ = patch_run
    with pytest.raises(LabkitError, match="has no spatial layer 'block1_cnv'. Did you mean: "
                                          "block1_conv"):
        explain.resolve_layer(runs.unwrap(run.model), "block1_cnv")


def test_labkit_explain_draws_each_method(cli, tmp_path):
    from PIL import Image
    from test_images import write_images

    root = tmp_path / "pets"
    write_images(root / "cats", 6, bright=False)
    write_images(root / "dogs", 6, bright=True)
    run = labkit.train("cnn", dataset=str(root), epochs=1, filters=[4], runs_dir=str(tmp_path),
                       name="pets", echo=lambda _: None)
    photo = root / "cats" / "0.png"
    result = cli("explain", run.path, photo, root / "dogs" / "1.png", "--out", tmp_path / "x")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "x").iterdir()) == [
        "gradcam_0.png", "gradcam_1.png", "gradcam_sheet.png"]
    result = cli("explain", run.path, photo, "--method", "activations", "--out", tmp_path / "a")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "a" / "activations_0_block1_conv.png").exists()
    result = cli("explain", run.path, "--method", "filters", "--filters", "2", "--steps", "3",
                 "--out", tmp_path / "f")
    assert result.exit_code == 0, result.output
    assert Image.open(tmp_path / "f" / "filters_block1_conv.png").size[0] > 100
    result = cli("explain", run.path, photo, "--class", "horses")
    assert error_line(result) == "Error: --class 'horses' is not a class of this run. Classes: " \
                                 "cats, dogs."
    (tmp_path / "notes.png").write_text("not an image")
    result = cli("explain", run.path, tmp_path / "notes.png")
    assert error_line(result).startswith(f"Error: {tmp_path / 'notes.png'} is not an image")


def test_evaluate_draws_the_confusion_matrix_and_the_top_losses(cli, digits_run):
    result = cli("evaluate", digits_run.path)
    assert result.exit_code == 0, result.output
    report = json.loads(digits_run.file("evaluation.json").read_text())
    assert np.sum(report["confusion_matrix"]) == 360
    from PIL import Image

    for name in ("confusion_matrix.png", "top_losses.png"):
        assert Image.open(digits_run.file(name)).size[0] > 300


def test_an_ensemble_averages_its_members_maps():
    model = labkit.build("ensemble", input_shape=(8, 8, 1), num_classes=3, k=2)
    images = np.random.default_rng(1).uniform(size=(2, 8, 8, 1)).astype("float32")
    members = [layer for layer in model.layers if layer.name.startswith("member_")]
    assert len(members) == 2
    maps, _, _ = explain.gradcam(model, images, class_index=0)
    each = [explain.gradcam(m, images, class_index=0)[0] for m in members]
    mean = np.mean(each, axis=0)
    peak = mean.reshape(2, -1).max(axis=1).reshape(-1, 1, 1)
    np.testing.assert_allclose(maps, mean / np.maximum(peak, 1e-12), atol=1e-6)


@pytest.mark.slow  # VGG16 features of 16 images, then its Grad-CAM
def test_explain_a_photo_with_a_vgg16_transfer_run_on_an_image_folder(cli, tmp_path,
                                                                      notop_weights):
    """The own-data workflow: a cats/dogs folder, vgg16_transfer (weights from a file saved from
    a random base, read as the ImageNet file would be), then the heatmap of one photo, taken
    by default at the nested base's block5_conv3."""
    from test_images import write_images

    root = tmp_path / "pets"
    write_images(root / "cats", 8, bright=False, size=(48, 48))
    write_images(root / "dogs", 8, bright=True, size=(48, 48))
    run = labkit.train("vgg16_transfer", dataset=str(root), epochs=1, fine_tune_epochs=0,
                       dense_units=8, weights=str(notop_weights[0]), runs_dir=str(tmp_path),
                       name="pets", echo=lambda _: None)
    model = runs.unwrap(runs.load_model(run, compile=False))
    assert explain.resolve_layer(model) == "vgg16/block5_conv3"
    result = cli("explain", run.path, root / "cats" / "0.png", "--out", tmp_path / "x")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "x" / "gradcam_0.png").stat().st_size > 5_000


JAX_SCRIPT = """
import json, sys
import keras, numpy as np
sys.path.insert(0, sys.argv[1])  # the tests folder
from test_explain import tiny_model
keras.utils.set_random_seed(0)
from labkit import explain
x = np.arange(16, dtype="float32").reshape(1, 4, 4, 1) / 16 - 0.3
maps, scores, classes = explain.gradcam(tiny_model(), x, class_index=1, task="binary")
inputs = keras.Input((8, 8, 1))
base = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Conv2D(3, 3, name="c1"),
                         keras.layers.Conv2D(4, 3, name="c2")], name="base")
head = keras.layers.Dense(2, activation="softmax")(keras.layers.Flatten()(base(inputs)))
nested = keras.Model(inputs, head)
images = np.random.default_rng(0).random((2, 8, 8, 1)).astype("float32")
nested_maps, _, _ = explain.gradcam(nested, images)
nested.save(sys.argv[2])
_, start, end = explain.filter_patterns(nested, "base/c1", filters=2, steps=5)
print(json.dumps({"backend": keras.backend.backend(), "map": maps[0].tolist(),
                  "nested": nested_maps.tolist(), "start": start.tolist(), "end": end.tolist()}))
"""


@pytest.mark.slow  # a second Python process with JAX
def test_gradients_come_from_the_jax_backend_too(tmp_path):
    """The hand-computed Grad-CAM, a nested base and filter ascent under KERAS_BACKEND=jax; the
    nested model's maps equal TensorFlow's for the same weights (a linear base can give an all-zero
    map, so the two backends are compared rather than the peak)."""
    import os
    import subprocess
    import sys

    pytest.importorskip("jax")
    tests = str(Path(__file__).resolve().parent)
    saved = tmp_path / "nested.keras"
    done = subprocess.run([sys.executable, "-c", JAX_SCRIPT, tests, str(saved)], text=True,
                          capture_output=True, env={**os.environ, "KERAS_BACKEND": "jax"},
                          check=True)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["backend"] == "jax"
    x = np.arange(16, dtype="float32").reshape(4, 4) / 16 - 0.3
    expected = np.maximum(2 * x - 0.5 * x, 0)
    np.testing.assert_allclose(result["map"], expected / expected.max(), atol=1e-5)
    nested = np.array(result["nested"])
    images = np.random.default_rng(0).random((2, 8, 8, 1)).astype("float32")
    on_tensorflow, _, _ = explain.gradcam(keras.models.load_model(saved), images)
    assert nested.shape == (2, 8, 8) and nested.max() == pytest.approx(1)
    np.testing.assert_allclose(nested, on_tensorflow, atol=1e-4)
    assert all(e > s for s, e in zip(result["start"], result["end"], strict=True))
