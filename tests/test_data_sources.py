"""Datasets by name (labkit.data): the catalog and each source — bundled digits, the generated
Playground sets and control charts, TFDS under mock data and offline."""

import numpy as np
import pytest

from labkit import data
from labkit.data import control_charts, pipeline, playground_sets
from labkit.data import tfds as tfds_source
from labkit.data.base import Preprocessing
from labkit.errors import LabkitError


def test_digits_splits_are_disjoint_uint8_and_stratified():
    loaded = data.load("digits", validation_split=0.25)
    (x_train, _), (x_val, y_val), (x_test, _) = loaded.train, loaded.val, loaded.test
    assert loaded.spec.input_shape == (8, 8, 1) and loaded.spec.num_classes == 10
    assert loaded.spec.task == "classification" and loaded.spec.scale == 16
    assert x_train.dtype == np.uint8 and x_train.shape[1:] == (8, 8, 1)
    assert len(x_train) + len(x_val) + len(x_test) == 1797
    assert len(x_test) == 360 and abs(len(x_val) / (len(x_train) + len(x_val)) - 0.25) < 0.01
    assert set(np.unique(y_val)) == set(range(10))


def test_splits_do_not_depend_on_the_training_seed():
    a, b = data.load("digits"), data.load("digits")
    np.testing.assert_array_equal(a.test[0], b.test[0])


def test_catalog_spec_agrees_with_what_each_offline_source_loads():
    for name in data.OFFLINE:
        spec, loaded = data.catalog_spec(name), data.load(name).spec
        assert (spec.input_shape, spec.num_classes, spec.task) == \
            (loaded.input_shape, loaded.num_classes, loaded.task), name


@pytest.mark.parametrize("name", playground_sets.GENERATORS)
def test_playground_sets_have_500_points_half_for_test(name):
    loaded = data.load(name, validation_split=0.2)
    assert loaded.spec.input_shape == (2,)
    assert len(loaded.train[0]) + len(loaded.val[0]) == 250 and len(loaded.test[0]) == 250
    x, y = loaded.test
    assert x.dtype == np.float32 and set(np.unique(y)) == {0, 1}
    assert np.abs(x).max() <= 6


@pytest.mark.parametrize("name", playground_sets.REGRESSION)
def test_playground_regression_sets_have_1200_points_small_targets(name):
    loaded = data.load(name, validation_split=0.0, options={"ratio": 30})
    assert loaded.spec.task == "regression" and loaded.spec.num_classes == 1
    (x, y), (x_test, _) = loaded.train, loaded.test
    assert len(x) == 360 and len(x_test) == 840  # ⌊1200 · 30 / 100⌋ train, as the Playground
    assert y.shape == (360, 1) and y.dtype == np.float32 and np.abs(y).max() <= 1.2
    assert np.abs(x).max() <= 6


def test_playground_regression_targets_follow_the_playground_rules():
    x, y = playground_sets.generate("plane", noise=0, seed=2)
    np.testing.assert_allclose(y[:, 0], (x[:, 0] + x[:, 1]) / 10, rtol=1e-5, atol=1e-6)
    x, y = playground_sets.generate("multi-gauss", noise=0, seed=2)
    near = np.hypot(x[:, 0] - 4, x[:, 1] + 2.5) < 0.2  # centre (4, −2.5) has sign −1
    assert near.any() and (y[near, 0] < -0.85).all()
    far = np.min([np.hypot(x[:, 0] - cx, x[:, 1] - cy) for cx, cy, _ in
                  playground_sets.GAUSSIANS], axis=0) > 2
    assert far.any() and (y[far, 0] == 0).all()


def test_playground_ratio_and_its_range():
    loaded = data.load("spiral", validation_split=0.0, options={"ratio": 10})
    assert len(loaded.train[0]) == 50 and len(loaded.test[0]) == 450
    for bad in (5, 95, "half"):
        with pytest.raises(LabkitError, match="ratio"):
            data.load("spiral", validation_split=0.0, options={"ratio": bad})


def test_playground_labels_follow_the_playground_rules():
    x, y = playground_sets.generate("circle", noise=0, seed=1)
    np.testing.assert_array_equal(y, np.linalg.norm(x, axis=1) < 2.5)
    x, y = playground_sets.generate("xor", noise=0, seed=1)
    np.testing.assert_array_equal(y, x[:, 0] * x[:, 1] >= 0)
    assert np.abs(x).min() >= 0.3  # pushed away from the axes
    x, y = playground_sets.generate("gauss", noise=0, seed=1)
    assert np.allclose(x[y == 1].mean(axis=0), [2, 2], atol=0.2)
    x, y = playground_sets.generate("spiral", noise=0, seed=1)
    assert np.linalg.norm(x, axis=1).max() < 5


def test_playground_noise_blurs_labels_and_seed_reproduces():
    clean = playground_sets.generate("circle", noise=0.0, seed=3)
    noisy = playground_sets.generate("circle", noise=0.5, seed=3)
    inside = np.linalg.norm(noisy[0], axis=1) < 2.5
    assert (noisy[1] != inside).any()
    assert (clean[1] == (np.linalg.norm(clean[0], axis=1) < 2.5)).all()
    np.testing.assert_array_equal(noisy[0],
                                  playground_sets.generate("circle", noise=0.5, seed=3)[0])


def test_playground_options_reach_the_generator():
    loaded = data.load("circle", validation_split=0, options={"num_samples": 100, "seed": 5})
    assert len(loaded.train[0]) == len(loaded.test[0]) == 50


def test_control_charts_have_six_patterns_of_sixty_steps():
    x, y = control_charts.generate(per_class=10)
    assert x.shape == (60, 60, 1) and x.dtype == np.float32
    assert np.bincount(y).tolist() == [10] * 6
    trend = x[y == 2][:, :, 0]  # increasing trend: the end is above the start
    assert (trend[:, -10:].mean(axis=1) > trend[:, :10].mean(axis=1)).all()


@pytest.mark.parametrize(("name", "options", "message"), [
    ("mnistt", None, "Unknown dataset 'mnistt'. Did you mean: mnist? Known: digits, circle, xor, "
                     "gauss, spiral, plane, multi-gauss, control_charts, mnist, "
                     "fashion_mnist, cifar10, "
                     "a path to an "
                     "image folder, a .csv or .npz file, or tfds:NAME."),
    ("spiral", {"noise": 2}, "Dataset option `noise` must be in [0, 0.5]. Received: noise=2"),
    ("spiral", {"num_samples": 5},
     "Dataset option `num_samples` must be an integer >= 20. Received: num_samples=5"),
    ("spiral", {"nosie": 0.1}, "Dataset 'spiral' has no option 'nosie'. Known: noise, "
                               "num_samples, seed, ratio."),
    ("digits", {"noise": 0.1}, "Dataset 'digits' takes no options. Received: {'noise': 0.1}"),
])
def test_bad_names_and_options(name, options, message):
    with pytest.raises(LabkitError) as info:
        data.load(name, options=options)
    assert str(info.value) == message


def test_tfds_dataset_streams_under_mock_data(tmp_path):
    tfds = pytest.importorskip("tensorflow_datasets")
    with tfds.testing.mock_data(num_examples=40):
        loaded = data.load("mnist", data_dir=str(tmp_path))
        assert loaded.streaming
        assert loaded.spec.input_shape == (28, 28, 1) and loaded.spec.num_classes == 10
        batches = pipeline.training_batches(loaded.train, 16, prep=loaded.spec.preprocessing,
                                            seed=0)
        x, y = next(iter(batches))
        assert x.dtype.name == "float32" and x.shape == (16, 28, 28, 1)
        assert 0 <= float(x.numpy().min()) and float(x.numpy().max()) <= 1
        assert y.shape == (16,)
        assert loaded.val is not None and loaded.test is not None


def test_missing_tfds_dataset_offline_says_how_to_prepare_it(tmp_path, monkeypatch):
    monkeypatch.setattr(tfds_source, "network_reachable", lambda *a, **k: False)
    with pytest.raises(LabkitError) as info:
        data.load("fashion_mnist", data_dir=str(tmp_path))
    message = str(info.value)
    assert "tfds build fashion_mnist" in message and "--data-dir" in message
    assert message.endswith("Offline datasets: digits, circle, xor, gauss, spiral, plane, "
                            "multi-gauss, "
                            "control_charts.")


def test_npz_in_keras_datasets_layout_keeps_its_test_split(tmp_path):
    x = np.arange(30 * 6 * 6, dtype=np.uint8).reshape(30, 6, 6)
    y = np.arange(30) % 3
    np.savez(tmp_path / "d.npz", x_train=x[:20], y_train=y[:20], x_test=x[20:], y_test=y[20:])
    loaded = data.load(str(tmp_path / "d.npz"), validation_split=0.25)
    assert loaded.spec.input_shape == (6, 6, 1) and loaded.spec.scale == 255
    assert (loaded.spec.task, loaded.spec.num_classes) == ("classification", 3)
    assert len(loaded.train[0]) == 15 and len(loaded.val[0]) == 5
    np.testing.assert_array_equal(loaded.test[0][..., 0], x[20:])
    assert data.catalog_spec(str(tmp_path / "d.npz")) == loaded.spec


@pytest.mark.parametrize(("arrays", "message"), [
    ({"a": np.zeros(3)}, "{path} holds a; a dataset needs x_train, y_train, x_test, y_test "
                         "(keras.datasets layout) or x, y."),
    ({"x": np.zeros((3, 2)), "y": np.zeros(4)}, "{path}: x has 3 rows, y 4; they must match."),
    ({"x": np.full((5, 2), np.nan), "y": np.zeros(5)},
     "{path}: x has 10 missing (NaN) values; remove or fill them first."),
    ({"x": np.zeros((4, 2)), "y": np.array([0, -1, 1, 0])},
     "Class labels must be 0..k-1. Received a label -1."),
])
def test_bad_npz_files(tmp_path, arrays, message):
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    with pytest.raises(LabkitError) as info:
        data.load(str(path))
    assert str(info.value) == message.format(path=path.resolve())


def test_missing_or_non_npz_file(tmp_path):
    with pytest.raises(LabkitError, match="Dataset file '.*nope.npz' does not exist."):
        data.load(str(tmp_path / "nope.npz"))
    (tmp_path / "text.npz").write_text("not an archive")
    with pytest.raises(LabkitError, match=r"text.npz is not an .npz archive \(np.savez writes"):
        data.load(str(tmp_path / "text.npz"))


def test_any_tfds_dataset_by_name_under_mock_data(tmp_path):
    tfds = pytest.importorskip("tensorflow_datasets")
    with tfds.testing.mock_data(num_examples=30):
        two_classes = data.load("tfds:patch_camelyon", data_dir=str(tmp_path))
        assert two_classes.spec.input_shape == (96, 96, 3) and two_classes.spec.scale == 255
        assert (two_classes.spec.task, two_classes.spec.num_classes) == ("binary", 2)
        assert data.catalog_spec("tfds:patch_camelyon") == two_classes.spec
        batches = pipeline.training_batches(two_classes.train, 4, prep=Preprocessing(255.0))
        x, y = next(iter(batches))
        assert x.shape == (4, 96, 96, 3) and float(x.numpy().max()) <= 1
        # the catalog's names keep their task: ten classes, softmax
        assert data.load("mnist", data_dir=str(tmp_path)).spec.task == "classification"


@pytest.mark.parametrize(("name", "message"), [
    ("tfds:mnistt", "TFDS has no dataset 'mnistt'. Did you mean: mnist"),
    ("tfds:cats_vs_dogs", "TFDS dataset 'cats_vs_dogs' has images of varying size "
                          "(None, None, 3); pass --image-size HEIGHTxWIDTH"),
])
def test_tfds_names_that_cannot_train(name, message):
    with pytest.raises(LabkitError) as info:
        data.catalog_spec(name)
    assert str(info.value).startswith(message)


def test_a_tfds_set_of_varying_image_sizes_is_resized_with_image_size(tmp_path):
    tfds = pytest.importorskip("tensorflow_datasets")
    with tfds.testing.mock_data(num_examples=12):
        loaded = data.load("tfds:cats_vs_dogs", data_dir=str(tmp_path),
                           options={"image_size": "40x50"})
        assert loaded.spec.input_shape == (40, 50, 3) and loaded.spec.task == "binary"
        assert data.catalog_spec("tfds:cats_vs_dogs", {"image_size": "40x50"}) == loaded.spec
        x, _ = pipeline.arrays(loaded.test)
        assert x.shape[1:] == (40, 50, 3) and x.max() <= 255
