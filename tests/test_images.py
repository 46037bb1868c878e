"""Image folders as datasets (labkit.data.images): both layouts, sizes and colour modes, bad files,
the disk-cached stream, `labkit data FOLDER`, and a binary run end to end whose saved model takes
raw uint8 images."""

import json
import shutil

import keras
import numpy as np
import pytest
from helpers import error_line
from PIL import Image

import labkit
from labkit import layout, runs
from labkit.data import images, pipeline
from labkit.errors import LabkitError


def write_images(folder, count, bright, size=(12, 10), mode="RGB", fmt="png", seed=0):
    """``count`` images of ``size`` (width, height): bright ones have a light top half."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    channels = 3 if mode == "RGB" else 1
    for i in range(count):
        pixels = rng.integers(0, 100, size=(size[1], size[0], channels), dtype=np.uint8)
        if bright:
            pixels[: size[1] // 2] += 150
        Image.fromarray(pixels.squeeze(-1) if channels == 1 else pixels, mode).save(
            folder / f"{i}.{fmt}")


@pytest.fixture(scope="module")
def r_layout(tmp_path_factory):
    """R's layout: train/ validation/ test/, each with cats/ and dogs/ (dogs bright)."""
    root = tmp_path_factory.mktemp("cats_and_dogs")
    for split, n in (("train", 16), ("validation", 6), ("test", 6)):
        write_images(root / split / "cats", n, bright=False, seed=len(split))
        write_images(root / split / "dogs", n, bright=True, fmt="jpg", seed=len(split) + 1)
    return root


@pytest.fixture
def classes(tmp_path):
    """Class subfolders only: three classes of grey PNGs."""
    for k, name in enumerate(("circle", "square", "triangle")):
        write_images(tmp_path / "shapes" / name, 10, bright=k == 1, mode="L", seed=k)
    return tmp_path / "shapes"


def test_r_layout_keeps_its_splits_and_names_classes_by_folder(r_layout):
    loaded = labkit.data.load(str(r_layout))
    spec = loaded.spec
    assert spec.input_shape == (10, 12, 3) and spec.task == "binary" and spec.scale == 255
    assert spec.class_names == ("cats", "dogs")
    assert [len(part[1]) for part in (loaded.train, loaded.val, loaded.test)] == [32, 12, 12]
    x, y = loaded.train
    assert x.dtype == np.uint8 and np.bincount(y).tolist() == [16, 16]
    assert x[y == 1][:, :5].mean() > x[y == 0][:, :5].mean() + 100  # dogs are bright on top


def test_class_subfolders_are_split_and_grey_images_stay_grey(classes):
    loaded = labkit.data.load(str(classes), validation_split=0.25)
    assert loaded.spec.input_shape == (10, 12, 1) and loaded.spec.task == "classification"
    assert loaded.spec.class_names == ("circle", "square", "triangle")
    sizes = [len(part[1]) for part in (loaded.train, loaded.val, loaded.test)]
    assert sum(sizes) == 30 and sizes[2] == 6  # the fixed 20 % test part
    assert np.bincount(loaded.test[1]).tolist() == [2, 2, 2]  # stratified
    rgb = labkit.data.load(str(classes), options={"color_mode": "rgb"})
    assert rgb.spec.input_shape == (10, 12, 3)


def test_decoded_pixels_are_what_keras_loads(r_layout):
    x, y = labkit.data.load(str(r_layout)).test
    path = r_layout / "test" / "cats" / "0.png"
    expected = keras.utils.img_to_array(keras.utils.load_img(path)).astype("uint8")
    assert any(np.array_equal(image, expected) for image in x[y == 0])


def test_image_size_resizes_and_mixed_sizes_need_it(tmp_path):
    write_images(tmp_path / "mixed" / "a", 4, bright=False, size=(12, 10))
    write_images(tmp_path / "mixed" / "b", 4, bright=True, size=(20, 16))
    with pytest.raises(LabkitError, match=r"differ in size \(10x12, 16x20, …\); pass "
                                          r"--image-size HEIGHTxWIDTH"):
        labkit.data.load(str(tmp_path / "mixed"))
    loaded = labkit.data.load(str(tmp_path / "mixed"), validation_split=0,
                              options={"image_size": "8x9", "interpolation": "area"})
    assert loaded.spec.input_shape == (8, 9, 3) and loaded.train[0].shape[1:] == (8, 9, 3)


def test_bad_files_are_named_or_skipped_and_counted(r_layout, tmp_path):
    folder = tmp_path / "data"
    shutil.copytree(r_layout, folder)
    (folder / "train" / "cats" / "notes.txt").write_text("not an image")
    broken = folder / "train" / "dogs" / "broken.jpg"
    broken.write_bytes((folder / "train" / "dogs" / "0.jpg").read_bytes()[:40])
    (folder / "train" / "dogs" / "fake.png").write_text("not a png")
    with pytest.raises(LabkitError) as info:
        labkit.data.load(str(folder))
    assert "cannot be decoded" in str(info.value) or "not an image" in str(info.value)
    assert "skip_bad=true" in str(info.value)
    loaded = labkit.data.load(str(folder), options={"skip_bad": True})
    assert len(loaded.train[1]) == 32  # the good ones
    assert loaded.notes[0].startswith("1 file(s) that are not")
    assert loaded.notes[1].startswith("2 image(s) that could not be decoded skipped")


@pytest.mark.parametrize(("make", "message"), [
    (lambda root: root.mkdir(), "has no class subfolders"),
    (lambda root: write_images(root / "only", 3, bright=False), "has one class (only)"),
    (lambda root: (write_images(root / "a", 3, bright=False), (root / "b").mkdir()),
     "holds no image that can be decoded"),
])
def test_folders_that_cannot_train(tmp_path, make, message):
    make(tmp_path / "data")
    with pytest.raises(LabkitError, match=message.replace("(", r"\(").replace(")", r"\)")):
        labkit.data.catalog_spec(str(tmp_path / "data"))


@pytest.mark.parametrize(("options", "message"), [
    ({"image_size": "150"}, None), ({"image_size": "0x5"}, "--image-size is HEIGHTxWIDTH"),
    ({"color_mode": "cmyk"}, "--color-mode must be rgb or grayscale"),
    ({"interpolation": "cubic"}, "interpolation must be one of bilinear"),
    ({"skip_bad": "yes"}, "skip_bad is true or false"), ({"target": "y"}, "has no option 'target'"),
])
def test_folder_options_are_checked(r_layout, options, message):
    if message is None:
        assert labkit.data.catalog_spec(str(r_layout), options).input_shape == (150, 150, 3)
        return
    with pytest.raises(LabkitError, match=message):
        labkit.data.catalog_spec(str(r_layout), options)


def test_a_folder_too_large_for_memory_streams_from_a_disk_cache(r_layout, tmp_path,
                                                                 monkeypatch):
    in_memory = labkit.data.load(str(r_layout))
    monkeypatch.setattr(images, "IN_MEMORY_LIMIT", 0)
    options = {"cache": str(tmp_path / "cache")}
    streamed = labkit.data.load(str(r_layout), options=options)
    assert streamed.cached and streamed.streaming
    assert len(list((tmp_path / "cache").glob("images-*/complete"))) == 3  # train, val, test
    x, y = pipeline.arrays(streamed.val)
    np.testing.assert_array_equal(x, pipeline.model_input(in_memory.val[0]))
    np.testing.assert_array_equal(y, in_memory.val[1])
    again = labkit.data.load(str(r_layout), options=options)  # read back from the cache
    np.testing.assert_array_equal(pipeline.arrays(again.val)[0], x)


def test_labkit_data_describes_a_folder(cli, r_layout):
    result = cli("data", r_layout, "--image-size", "20x24")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        f"{r_layout}: images, task binary, input shape (20, 24, 3), 2 classes, values divided by "
        "255 in the model",
        "  train       32 examples  cats: 16, dogs: 16",
        "  val         12 examples  cats: 6, dogs: 6",
        "  test        12 examples  cats: 6, dogs: 6",
    ]


def test_bad_folder_on_the_command_line(cli, tmp_path):
    (tmp_path / "empty").mkdir()
    result = cli("train", "cnn", "--dataset", tmp_path / "empty", "--runs-dir", tmp_path / "runs")
    assert result.exit_code == 1
    assert error_line(result) == (
        f"Error: Image folder '{tmp_path / 'empty'}' has no class subfolders: put each class's "
        f"images in a folder named after it ({tmp_path / 'empty'}/cats/, "
        f"{tmp_path / 'empty'}/dogs/).")
    result = cli("train", "cnn", "--dataset", f"{tmp_path}/nowhere/", "--runs-dir", tmp_path)
    assert error_line(result) == f"Error: Dataset path '{tmp_path / 'nowhere'}/' does not exist."
    assert not (tmp_path / "runs").exists()


def test_binary_folder_run_end_to_end_and_the_saved_model_takes_raw_images(r_layout, tmp_path,
                                                                           cli):
    result = cli("train", "cnn", "--dataset", r_layout, "--epochs", "2", "--set", "filters=[4]",
                 "--augment", "flip", "--runs-dir", tmp_path, "--name", "cvd")
    assert result.exit_code == 0, result.output
    run = labkit.load_run(tmp_path / "cvd")
    assert run.config["task"] == "binary" and run.config["model_inputs"] == "raw"
    assert run.config["data_spec"]["class_names"] == ["cats", "dogs"]
    result = cli("evaluate", run.path)
    assert result.exit_code == 0, result.output
    report = json.loads(run.file("evaluation.json").read_text())
    assert report["class_names"] == ["cats", "dogs"] and "cats" in result.output
    # one AUC line: Keras's metric, with the exact ROC AUC beside it, not two unexplained ones
    auc_lines = [line for line in result.output.splitlines() if "AUC" in line]
    assert auc_lines == [f"test_auc       {report['test_auc']:.4f}  (Keras's AUC metric, 200 "
                         f"thresholds, as in history.csv; exact ROC AUC {report['auc']:.4f})"]
    assert report["test_accuracy"] == pytest.approx(run.metrics["test_accuracy"], abs=1e-6)
    # keras alone, on raw uint8 pixels, answers as labkit's evaluation does
    raw_x, raw_y = labkit.data.load(str(r_layout)).test
    model = keras.models.load_model(run.file(layout.MODEL))
    outputs = model.predict(raw_x, verbose=0)
    inner = runs.unwrap(model).predict(pipeline.model_input(raw_x, run_prep(run)), verbose=0)
    np.testing.assert_allclose(outputs, inner, atol=1e-6)
    accuracy = float(((outputs[:, 0] >= 0.5) == raw_y).mean())
    assert accuracy == pytest.approx(report["test_accuracy"], abs=1e-6)


def run_prep(run):
    from labkit.data.base import Preprocessing

    return Preprocessing.from_dict(run.config["data_spec"]["preprocessing"])


@pytest.mark.parametrize(("side", "declared"), [(40, " (40x40)"), (50, "")])
def test_an_image_past_pillows_bomb_limit_is_refused_with_the_limit_named(
        tmp_path, cli, monkeypatch, side, declared):
    """Pillow's limit, lowered so a small file stands in for a bomb: 1 600 pixels is past it
    (Pillow warns), 2 500 past twice it (Pillow raises); both are one Error line, in training
    data and in predict's inputs, before anything is decoded."""
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    root = tmp_path / "pets"
    write_images(root / "cats", 3, bright=False)
    write_images(root / "dogs", 3, bright=True)
    bomb = root / "dogs" / "bomb.png"
    Image.new("L", (side, side)).save(bomb)
    expected = (f"Error: {bomb} declares more pixels{declared} than Pillow's decompression-bomb "
                "limit of 1,000 (PIL.Image.MAX_IMAGE_PIXELS); refused before decoding. Remove "
                "it, or shrink it first.")
    assert error_line(cli("data", root)) == expected
    assert error_line(cli("data", root, "--data-option", "skip_bad=true")) == expected
