"""Split → what the model is fed (labkit.data.pipeline), and what training derives from a split:
scaling, reshuffling every epoch, augmentation of training batches only, class weights."""

import numpy as np
import pytest
from helpers import small_config

from labkit import data, training
from labkit.data import pipeline
from labkit.data.base import Preprocessing


@pytest.fixture(scope="module")
def digits():
    return data.load("digits")


def prepared(tmp_path, **overrides) -> training.Prepared:
    return training.prepare(small_config(tmp_path, **overrides).resolve())


def test_model_input_is_float32_scaled(digits):
    scaled = pipeline.model_input(digits.train[0], digits.spec.preprocessing)
    assert scaled.dtype == np.float32 and scaled.min() == 0 and scaled.max() == 1


def test_training_batches_are_reshuffled_every_epoch(digits):
    batches = pipeline.training_batches(digits.train, 32, prep=digits.spec.preprocessing, seed=1)
    first, second = ([y.numpy() for _, y in batches] for _ in range(2))
    assert not all(np.array_equal(a, b) for a, b in zip(first, second, strict=True))
    np.testing.assert_array_equal(np.sort(np.concatenate(first)), np.sort(digits.train[1]))


def test_a_stream_and_its_arrays_feed_the_same_values(digits):
    import tensorflow as tf

    x, y = digits.test
    stream = tf.data.Dataset.from_tensor_slices((x, y))
    from_stream = pipeline.arrays(stream, prep=Preprocessing(16.0), batch_size=50)
    from_arrays = pipeline.arrays((x, y), prep=Preprocessing(16.0))
    np.testing.assert_array_equal(from_stream[0], from_arrays[0])
    np.testing.assert_array_equal(from_stream[1], y)
    assert pipeline.count(stream) == pipeline.count((x, y)) == 360
    np.testing.assert_array_equal(pipeline.labels(stream), pipeline.labels((x, y)))
    assert pipeline.inputs(None, 32) is None


def test_image_augmentation_applies_to_training_batches_only(tmp_path, digits):
    p = prepared(tmp_path, recipe="cnn", hparams={"filters": [4]},
                 augment="flip,rotation=0.2,zoom=0.1,translation=0.1,contrast=0.3")
    kwargs = training.fit_kwargs(p)
    x, y = next(iter(kwargs["x"]))
    assert x.shape[1:] == (8, 8, 1) and len(y) == 32
    x_val, y_val = kwargs["validation_data"]
    np.testing.assert_array_equal(y_val, digits.val[1])
    np.testing.assert_array_equal(x_val,
                                  pipeline.model_input(digits.val[0], Preprocessing(16.0)))


def test_augment_fill_says_what_uncovered_pixels_become():
    """A shift with ``fill=constant`` uncovers black pixels; Keras's default, reflect, mirrors
    the image into them."""
    from labkit import augment

    image = np.ones((1, 8, 8, 1), "float32")
    image[:, :, :4] = 0.5  # left half grey, right half white
    for fill, uncovered in (("constant", 0.0), ("reflect", None)):
        spec = augment.resolve(f"translation=0.5,fill={fill}", (8, 8, 1))
        assert spec == {"translation": 0.5, "fill": fill}
        (layer,) = augment.layers(spec, seed=1)
        shifted = np.stack([np.asarray(layer(image, training=True))[0] for _ in range(8)])
        if uncovered is not None:
            assert (shifted == uncovered).any()
        else:
            assert not (shifted == 0).any()  # nothing black appears
    assert augment.resolve("translation", (8, 8, 1)) == {"translation": 0.1}


def test_features_map_training_and_validation_inputs(digits):
    doubled = pipeline.inputs(digits.val, 32, prep=Preprocessing(16.0),
                             features=lambda x: 2 * x)
    np.testing.assert_array_equal(doubled[0],
                                  2 * pipeline.model_input(digits.val[0], Preprocessing(16.0)))
    batches = pipeline.training_batches(digits.train, 8, prep=Preprocessing(16.0),
                                        features=lambda x: x.reshape(len(x), -1))
    x, _ = next(iter(batches))
    assert x.shape == (8, 64)


def test_balanced_class_weights_follow_sklearns_formula_and_reach_fit(tmp_path):
    p = prepared(tmp_path, class_weight="balanced")
    labels = p.loaded.train[1]
    counts = np.bincount(labels)
    for cls, weight in p.derived["class_weight"].items():
        assert weight == pytest.approx(len(labels) / (10 * counts[cls]))
    assert training.fit_kwargs(p)["class_weight"] == p.derived["class_weight"]


@pytest.mark.parametrize(("batch_size", "steps"), [("full", 1), (7, 165), (64, 18)])
def test_derived_batch_size_and_steps(tmp_path, batch_size, steps):
    p = prepared(tmp_path, batch_size=batch_size)
    assert p.derived["train_examples"] == 1149 and p.derived["steps_per_epoch"] == steps
