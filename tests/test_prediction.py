"""``labkit predict`` (labkit.prediction): image files, folders, globs, CSV and npz inputs read
as training read them; the answers of each task; every bad input."""

import json
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import pytest
from helpers import error_line
from PIL import Image
from test_images import write_images

import labkit
from labkit import layout
from labkit.data import images


@pytest.fixture(scope="module")
def image_run(tmp_path_factory):
    """A binary convnet run on a cats/dogs folder (R's layout), and the folder."""
    root = tmp_path_factory.mktemp("pets")
    for split, n in (("train", 12), ("validation", 4), ("test", 4)):
        write_images(root / split / "cats", n, bright=False, seed=len(split))
        write_images(root / split / "dogs", n, bright=True, seed=len(split) + 1)
    run = labkit.train("cnn", dataset=str(root), epochs=1, filters=[4],
                       runs_dir=str(tmp_path_factory.mktemp("runs")), name="pets",
                       echo=lambda _: None)
    return run, root


def keras_answers(run, paths):
    """What keras alone says on the images decoded as training decoded them."""
    model = keras.models.load_model(run.file(layout.MODEL))
    settings = images.Settings((10, 12), "rgb")
    x, failed = images.decode(paths, settings)
    assert not failed
    return model.predict(x, verbose=0)[:, 0]


def test_a_folder_of_images_gets_class_names_and_the_models_probabilities(image_run):
    run, root = image_run
    frame = labkit.predict(run, root / "test")
    paths = sorted((root / "test").rglob("*.png"))
    assert list(frame["input"]) == [str(p) for p in paths]
    assert set(frame["class"]) <= {"cats", "dogs"}
    dogs = keras_answers(run, paths)
    expected = np.where(dogs >= 0.5, dogs, 1 - dogs)
    np.testing.assert_allclose(frame["probability"], expected, atol=1e-6)
    assert list(frame["class"]) == ["dogs" if p >= 0.5 else "cats" for p in dogs]


def test_files_globs_top_k_and_the_checkpoints(image_run):
    run, root = image_run
    one = root / "test" / "cats" / "0.png"
    frame = labkit.predict(run, [str(one), str(root / "test" / "dogs" / "*.png")], top=2)
    assert len(frame) == 5 and list(frame.columns) == ["input", "class", "probability",
                                                       "class_2", "probability_2"]
    np.testing.assert_allclose(frame["probability"] + frame["probability_2"], 1, atol=1e-6)
    best = labkit.predict(run, str(one), model="best")  # one epoch: the best is the last
    np.testing.assert_allclose(best["probability"], frame["probability"][:1], atol=1e-6)


def test_grey_images_are_converted_as_in_training_and_said_once(image_run, tmp_path):
    run, _ = image_run
    write_images(tmp_path / "grey", 3, bright=True, mode="L")
    notes = []
    frame = labkit.prediction.predict(run, tmp_path / "grey", notes=notes)
    assert len(frame) == 3
    assert notes == ["3 image(s) converted to rgb, as in training"]


def test_bad_images_are_named_or_skipped(image_run, tmp_path):
    run, root = image_run
    folder = tmp_path / "mixed"
    write_images(folder, 2, bright=False)
    (folder / "broken.png").write_text("not a png")
    with pytest.raises(labkit.errors.LabkitError, match="broken.png is not an image that can be "
                                                        "decoded; remove it or pass --skip-bad"):
        labkit.predict(run, folder)
    notes = []
    frame = labkit.prediction.predict(run, folder, skip_bad=True, notes=notes)
    assert len(frame) == 2 and notes == ["1 file(s) that are not decodable images skipped"]


@pytest.fixture(scope="module")
def houses_run(tmp_path_factory):
    rng = np.random.default_rng(1)
    frame = pd.DataFrame({"area": rng.uniform(40, 200, 120), "rooms": rng.integers(1, 7, 120)})
    frame["price"] = 0.1 * frame["area"] + 2 * frame["rooms"]
    path = tmp_path_factory.mktemp("csv") / "houses.csv"
    frame.to_csv(path, index=False)
    run = labkit.train("mlp", dataset=str(path), epochs=2, units=[8],
                       data_options={"target": "price"},
                       runs_dir=str(tmp_path_factory.mktemp("runs")), name="houses",
                       echo=lambda _: None)
    return run, frame


def test_csv_rows_are_matched_to_the_feature_columns_by_name(houses_run, tmp_path):
    run, frame = houses_run
    new = frame[["rooms", "area"]].head(5).assign(street="x")  # other order, an extra column
    new.to_csv(tmp_path / "new.csv", index=False)
    predicted = labkit.predict(run, tmp_path / "new.csv")
    model = keras.models.load_model(run.file(layout.MODEL))
    expected = model.predict(frame[["area", "rooms"]].head(5).to_numpy("float32"), verbose=0)
    np.testing.assert_allclose(predicted["value"], expected[:, 0], rtol=1e-6)
    assert predicted["input"][0] == f"{tmp_path / 'new.csv'}:2"  # the line in the file
    frame[["rooms"]].to_csv(tmp_path / "short.csv", index=False)
    with pytest.raises(labkit.errors.LabkitError, match="lacks the feature column\\(s\\) area"):
        labkit.predict(run, tmp_path / "short.csv")


def test_npz_inputs_on_a_digits_run(digits_run, tmp_path):
    x = labkit.data.load("digits").test[0][:7]
    np.savez(tmp_path / "some.npz", x=x[..., 0])  # grey images without the channel axis
    frame = labkit.predict(digits_run, tmp_path / "some.npz")
    expected = keras.models.load_model(digits_run.file(layout.MODEL)).predict(x, verbose=0)
    assert list(frame["class"]) == [str(i) for i in expected.argmax(axis=1)]


def test_inputs_outside_the_trained_range_are_named_once(digits_run, cli, tmp_path):
    """Digits are 0..16; a PNG of one holds 0..255 and the model saturates on it: a warning
    says so, on the command line and in Python; raw digits values pass without one."""
    x = labkit.data.load("digits").test[0][:3, ..., 0]
    for i, image in enumerate(x):
        Image.fromarray((image.astype(float) * 255 / 16).astype("uint8")).save(
            tmp_path / f"d{i}.png")
    result = cli("predict", digits_run.path, tmp_path / "d0.png", tmp_path / "d1.png",
                 tmp_path / "d2.png")
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.output.splitlines() if line.startswith("warning:")]
    assert warnings == ["warning: inputs are 0..255, this run was trained on 0..16 (digits): "
                        "scale them to that range, or train on inputs like them. The answers "
                        "may be saturated."]
    np.savez(tmp_path / "raw.npz", x=x)
    assert "warning:" not in cli("predict", digits_run.path, tmp_path / "raw.npz").output
    with pytest.warns(UserWarning, match="inputs are 0..255, this run was trained on 0..16"):
        labkit.predict(digits_run, tmp_path / "d0.png")
    assert json.loads(digits_run.file(layout.CONFIG).read_text())["data_spec"][
        "input_range"] == {"min": [0.0], "max": [16.0]}


def test_labkit_predict_prints_a_table_and_writes_csv(cli, image_run, tmp_path):
    run, root = image_run
    result = cli("predict", run.path, root / "test" / "cats", "--output", tmp_path / "p.csv")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split() == ["input", "class", "probability"]
    written = pd.read_csv(tmp_path / "p.csv")
    assert len(written) == 4 and set(written.columns) == {"input", "class", "probability"}


@pytest.mark.parametrize(("make", "line"), [
    (lambda tmp: (tmp / "empty").mkdir() or [tmp / "empty"],
     "Error: Folder '{tmp}/empty' holds no image files (.bmp, .gif, .jpeg, .jpg, .png)."),
    (lambda tmp: [tmp / "nothing.png"], "Error: Input '{tmp}/nothing.png' does not exist."),
    (lambda tmp: [f"{tmp}/*.jpg"], "Error: No file matches '{tmp}/*.jpg'."),
])
def test_bad_inputs_on_the_command_line(cli, image_run, tmp_path, make, line):
    run, _ = image_run
    result = cli("predict", run.path, *make(tmp_path))
    assert result.exit_code == 1
    assert error_line(result) == line.format(tmp=tmp_path)


def test_a_run_without_a_model_is_a_clear_error(cli, image_run, tmp_path):
    run, root = image_run
    bare = tmp_path / "bare"
    bare.mkdir()
    (bare / layout.CONFIG).write_text(json.dumps(run.config))
    (bare / layout.METRICS).write_text(json.dumps({"status": "interrupted"}))
    result = cli("predict", bare, root / "test")
    assert error_line(result) == f"Error: {bare} has no model.keras (run status: interrupted)."


def test_the_model_keeps_its_input_pixels_uint8_raw(image_run):
    """A sanity check of the premise: the saved model rescales itself."""
    run, root = image_run
    image = np.asarray(Image.open(root / "test" / "dogs" / "0.png"))[None]
    model = keras.models.load_model(run.file(layout.MODEL))
    assert model.layers[1].name == "rescaling"
    assert model.predict(image, verbose=0).shape == (1, 1)


def test_exports_of_a_folder_run_and_a_csv_run_answer_as_predict_does(image_run, houses_run,
                                                                       tmp_path):
    """export → its runtime → the same answers `labkit predict` gives on the raw files."""
    from labkit import export, formats

    run, root = image_run
    folder = root / "test" / "dogs"
    predicted = labkit.predict(run, folder)
    x, _ = images.decode(sorted(folder.rglob("*.png")), images.Settings((10, 12), "rgb"))
    for result in export.export(run.path, "all", str(tmp_path / "pets")):
        dogs = np.asarray(formats.get(result["format"]).load(Path(result["path"]))(
            x.astype("float32")))[:, 0]
        np.testing.assert_allclose(np.where(dogs >= 0.5, dogs, 1 - dogs),
                                   predicted["probability"], atol=1e-4)
    run, frame = houses_run
    frame.head(6).to_csv(tmp_path / "rows.csv", index=False)
    values = labkit.predict(run, tmp_path / "rows.csv")["value"]
    features = frame[["area", "rooms"]].head(6).to_numpy("float32")
    for result in export.export(run.path, "all", str(tmp_path / "houses")):
        got = np.asarray(formats.get(result["format"]).load(Path(result["path"]))(features))
        np.testing.assert_allclose(got[:, 0], values, rtol=1e-4, atol=1e-4)


def test_an_image_bomb_among_the_inputs_is_refused_before_decoding(image_run, tmp_path, cli,
                                                                   monkeypatch):
    run, _ = image_run
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    bomb = tmp_path / "bomb.png"
    Image.new("RGB", (50, 50)).save(bomb)
    assert error_line(cli("predict", run.path, bomb)).startswith(
        f"Error: {bomb} declares more pixels than Pillow's decompression-bomb limit of 1,000")
