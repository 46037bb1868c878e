import json
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import pytest

import labkit
from labkit import data, layout, runs
from labkit.config import TrainConfig, resolve_train_config
from labkit.data import pipeline
from labkit.errors import LabkitError
from labkit.training import train


def quiet_train(tmp_path, recipe, dataset="digits", epochs=1, name=None, hparams=None, **flags):
    """Train as the CLI does: the recipe's preferred training options apply unless set."""
    config = resolve_train_config(
        recipe=recipe, config_file=None, hparams=hparams or {}, data_options={},
        flags={"dataset": dataset, "epochs": epochs, "runs_dir": str(tmp_path),
               "name": name or recipe, **flags})
    return train(config, echo=lambda _: None)


TRAIN_CASES = {
    "mlp": ("digits", {"units": [16]}),
    "cnn": ("digits", {"filters": [8]}),
    "cnn1d": ("control_charts", {"filters": [8]}),
    "resnet": ("digits", {"blocks": [1, 1], "width": 4}),
    "vgg16": ("digits", {"width": 0.0625, "dense_units": [16, 16]}),
    "ensemble": ("digits", {"member": "mlp", "k": 2, "member_hparams": {"units": [8]}}),
    "playground": ("circle", {"features": ["x1", "x2", "x1^2", "x2^2"]}),
}


@pytest.mark.parametrize("recipe", [
    pytest.param(name, marks=pytest.mark.slow) if name == "vgg16_transfer" else name
    for name in labkit.list_recipes()])  # vgg16_transfer's run is covered by the next-but-one
def test_every_recipe_trains_an_epoch_on_bundled_data(recipe, tmp_path, notop_weights, base_run):
    dataset, hparams = TRAIN_CASES.get(recipe, ("digits", {}))
    if recipe == "vgg16_transfer":
        hparams = {"weights": str(notop_weights[0]), "fine_tune_epochs": 1, "dense_units": 16}
    if recipe == "transfer":
        hparams = {"base": str(base_run((8, 8, 1))), "freeze": "fc1"}
    run = quiet_train(tmp_path, recipe, dataset, hparams=hparams, batch_size=64)
    metrics = run.metrics
    assert metrics["status"] == "completed" and 0 <= metrics["test_accuracy"] <= 1
    assert np.isfinite(pd.read_csv(run.file(layout.HISTORY))["loss"]).all()


def test_shared_hyperparameters_reach_the_layer_configs():
    model = labkit.build("cnn", input_shape=(8, 8, 1), num_classes=10, filters=[4, 8],
                         dense_units=[16], l2=[0.1, 0.2, 0.3, 0.4], l1=0.01,
                         kernel_initializer="random_uniform(minval=-0.1, maxval=0.1)",
                         bias_initializer="constant(0.1)", batch_norm=True, dropout=[0.1, 0.3],
                         activation="tanh")
    conv = model.get_layer("block1_conv").get_config()
    assert conv["kernel_initializer"]["class_name"] == "RandomUniform"
    assert conv["kernel_initializer"]["config"]["minval"] == -0.1
    assert conv["bias_initializer"]["config"] == {"value": 0.1}
    penalties = [model.get_layer(n).get_config()["kernel_regularizer"]["config"]
                 for n in ("block1_conv", "block2_conv", "fc1", "predictions")]
    assert [p["l2"] for p in penalties] == pytest.approx([0.1, 0.2, 0.3, 0.4])
    assert all(p["l1"] == pytest.approx(0.01) for p in penalties)
    assert model.get_layer("block1_bn") and model.get_layer("fc1_bn")
    assert model.get_layer("fc1_dropout").rate == 0.1
    assert model.get_layer("predictions_dropout").rate == 0.3
    assert model.get_layer("block2_tanh").get_config()["activation"] == "tanh"
    normal = labkit.build("mlp", input_shape=(2,), num_classes=2,
                          kernel_initializer="random_normal(mean=0.5, stddev=0.01)")
    weights = normal.get_layer("fc1").kernel.numpy()
    assert abs(weights.mean() - 0.5) < 0.01 and weights.std() < 0.02


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"kernel_initializer": "glorot"}, "`kernel_initializer` must name an initializer"),
    ({"kernel_initializer": "random_normal(0.1, 2)"}, "takes keyword arguments only"),
    ({"kernel_initializer": "random_normal(stddev=)"}, "must be keyword=number pairs"),
    ({"l2": -1}, r"`l2` must be >= 0. Received: l2=-1"),
    ({"l1": [0.1, 0.2, 0.3]}, r"`l1` needs one value per layer \(2\)"),
])
def test_bad_shared_hyperparameters(kwargs, message):
    with pytest.raises(ValueError, match=message):
        labkit.build("mlp", input_shape=(2,), num_classes=2, units=[4], **kwargs)


def test_penalty_is_added_to_the_loss_as_alpha_times_norm():
    model = labkit.build("mlp", input_shape=(2,), num_classes=2, units=[3], l2=0.5)
    model(np.zeros((1, 2), "float32"))
    kernels = [model.get_layer(n).kernel.numpy() for n in ("fc1", "predictions")]
    expected = sum(0.5 * float((k ** 2).sum()) for k in kernels)
    assert float(sum(model.losses)) == pytest.approx(expected, rel=1e-5)


def test_ensemble_prediction_is_the_mean_of_its_members():
    model = labkit.build("ensemble", input_shape=(8, 8, 1), num_classes=10, member="mlp", k=3,
                         member_hparams={"units": [8]})
    x = np.random.default_rng(0).random((5, 8, 8, 1), dtype="float32")
    members = [model.get_layer(f"member_{i}").predict(x, verbose=0) for i in (1, 2, 3)]
    np.testing.assert_allclose(model.predict(x, verbose=0), np.mean(members, axis=0), rtol=1e-5)
    assert not np.allclose(members[0], members[1])  # different start values


def test_ensemble_members_train_in_turn_and_evaluate_reports_each(tmp_path, cli):
    run = quiet_train(tmp_path, "ensemble", epochs=2,
                      hparams={"member": "mlp", "k": 2, "member_hparams": {"units": [8]}})
    history = pd.read_csv(run.file(layout.HISTORY))
    assert list(history["phase"]) == ["member_1", "member_1", "member_2", "member_2"]
    assert list(history["epoch"]) == [1, 2, 3, 4]
    result = cli("evaluate", run.path)
    assert result.exit_code == 0, result.output
    report = json.loads(run.file("evaluation.json").read_text())
    assert set(report["members"]) == {"member_1", "member_2"}
    assert "member_1" in result.output and "ensemble" in result.output


def test_transfer_from_a_saved_run_freezes_and_replaces_the_head(tmp_path):
    source = quiet_train(tmp_path, "cnn", epochs=1, name="source", hparams={"filters": [4, 8]})
    model = labkit.build("transfer", input_shape=(8, 8, 1), num_classes=3, base=str(source.path),
                         freeze="block1_conv")
    assert model.get_layer("predictions").units == 3
    trainable = {layer.name: layer.trainable for layer in model.layers if layer.weights}
    assert trainable == {"block1_conv": False, "block2_conv": True, "predictions": True}
    old = runs.unwrap(keras.models.load_model(source.file(layout.MODEL)))
    np.testing.assert_array_equal(model.get_layer("block2_conv").kernel.numpy(),
                                  old.get_layer("block2_conv").kernel.numpy())
    frozen = labkit.build("transfer", input_shape=(8, 8, 1), num_classes=3, base=str(source.path))
    assert [layer.name for layer in frozen.layers if layer.trainable_weights] == ["predictions"]
    with pytest.raises(ValueError, match="Transfer needs the same input shape"):
        labkit.build("transfer", input_shape=(2,), num_classes=2, base=str(source.path))
    with pytest.raises(ValueError, match="`freeze` must be 'all', 'none' or a layer"):
        labkit.build("transfer", input_shape=(8, 8, 1), num_classes=2, base=str(source.path),
                     freeze="fc9")


def test_vgg16_weights_file_round_trip(notop_weights, tmp_path, monkeypatch):
    path, base = notop_weights
    model = labkit.build("vgg16_transfer", input_shape=(8, 8, 1), num_classes=2, weights=str(path))
    loaded = model.get_layer("vgg16")
    for name in ("block1_conv1", "block5_conv3"):
        np.testing.assert_array_equal(loaded.get_layer(name).kernel.numpy(),
                                      base.get_layer(name).kernel.numpy())
    # weights="imagenet" reads Keras's cache under $KERAS_HOME/models, the real file name
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / path.name).write_bytes(path.read_bytes())
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    cached = labkit.build("vgg16_transfer", input_shape=(32, 32, 3), num_classes=2)
    np.testing.assert_array_equal(cached.get_layer("vgg16").get_layer("block3_conv2").kernel,
                                  base.get_layer("block3_conv2").kernel)


def test_vgg16_imagenet_offline_names_the_file_and_the_alternative(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))

    def offline(*args, **kwargs):
        raise OSError("no network")

    monkeypatch.setattr(keras.utils, "get_file", offline)
    with pytest.raises(ValueError) as info:
        labkit.build("vgg16_transfer", input_shape=(32, 32, 3), num_classes=2)
    message = str(info.value)
    assert "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5" in message
    assert str(tmp_path / "models") in message and "weights=PATH" in message


def test_feature_extraction_agrees_with_end_to_end_frozen_training(notop_weights):
    from recipes.vgg16 import _split_base_head

    loaded = data.load("digits")
    x = pipeline.model_input(loaded.train[0][:64], loaded.spec.preprocessing)
    y = loaded.train[1][:64]
    trained = []
    for fast in (True, False):
        keras.utils.set_random_seed(0)
        model = labkit.build("vgg16_transfer", input_shape=(8, 8, 1), num_classes=10,
                             weights=str(notop_weights[0]), dropout=0, dense_units=16)
        model.get_layer("vgg16").trainable = False
        target, inputs = model, x
        if fast:
            features, target = _split_base_head(model)
            inputs = features.predict(x, verbose=0)
        target.compile(keras.optimizers.SGD(0.01), "sparse_categorical_crossentropy")
        target.fit(inputs, y, batch_size=16, epochs=2, shuffle=False, verbose=0)
        trained.append(model.get_layer("predictions").kernel.numpy())
    np.testing.assert_allclose(trained[0], trained[1], rtol=1e-4, atol=1e-6)


@pytest.mark.slow  # VGG16 fine-tuned end to end: about 100 s on 2 cores
def test_vgg16_transfer_run_has_both_phases(tmp_path, notop_weights):
    run = quiet_train(tmp_path, "vgg16_transfer", epochs=1,
                      hparams={"weights": str(notop_weights[0]), "fine_tune_epochs": 1,
                               "dense_units": 8})
    history = pd.read_csv(run.file(layout.HISTORY))
    assert list(history["phase"]) == ["feature_extraction", "fine_tuning"]
    assert list(history["epoch"]) == [1, 2]
    assert run.config["learning_rate"] == 2e-5  # the recipe's preferred rate


def test_playground_writes_a_decision_boundary_plot(tmp_path):
    run = quiet_train(tmp_path, "playground", "xor", epochs=2,
                      hparams={"features": ["x1*x2"], "hidden": [2]})
    assert run.file("decision_boundary.png").stat().st_size > 10_000
    assert run.config["batch_size"] == 10 and run.config["optimizer"] == "sgd"
    with pytest.raises(LabkitError, match="takes points inputs"):
        TrainConfig(recipe="playground", dataset="digits").resolve()


R_LAB_MODELS = [  # (recipe, describe arguments, parameters) as docs/r-to-python.md lists them
    ("mlp", {"dataset": "mnist"}, {"units": [512]}, 407_050),
    ("cnn", {"dataset": "mnist"}, {"filters": [32, 64, 64], "pooling": ["max", "max", "none"],
                                   "dense_units": [64], "dropout": 0, "padding": "valid"}, 93_322),
    ("cnn", {"input_shape": (150, 150, 3), "task": "binary"},
     {"filters": [32, 64, 128, 128], "padding": "valid", "dense_units": [512], "dropout": 0},
     3_453_121),
    ("cnn", {"input_shape": (150, 150, 3), "task": "binary"},
     {"filters": [32, 64, 128, 128], "padding": "valid", "dense_units": [512],
      "dropout": [0.5, 0]}, 3_453_121),
    ("vgg16_transfer", {"input_shape": (150, 150, 3), "task": "binary"}, {"weights": "none"},
     16_812_353),
]


@pytest.mark.parametrize(("recipe", "where", "hparams", "parameters"), R_LAB_MODELS)
def test_the_r_labs_models_have_their_parameter_counts(recipe, where, hparams, parameters):
    from labkit import describe

    text, count = describe.summary(recipe, where.get("dataset", "digits"), hparams,
                                   input_shape=where.get("input_shape"), task=where.get("task"))
    assert count == parameters
    docs = (Path(__file__).parents[1] / "docs" / "r-to-python.md").read_text()
    assert f"{parameters:,}" in docs


@pytest.mark.parametrize(("fine_tune_from", "trainable"), [("block5_conv1", 9_177_089),
                                                          ("block3_conv1", 16_552_193)])
def test_vgg16_phases_train_the_r_labs_parameters(fine_tune_from, trainable):
    recipe = labkit.get_recipe("vgg16_transfer")
    hparams = {**recipe.hyperparameters, "weights": "none", "fine_tune_from": fine_tune_from,
               "fine_tune_epochs": 1}
    model = recipe.build((150, 150, 3), 2, "binary", **hparams)
    extraction, fine_tuning = recipe.phases(hparams, 1)

    def count():
        return sum(int(np.prod(w.shape)) for w in model.trainable_weights)

    extraction.prepare(model)
    assert count() == 2_097_665
    fine_tuning.prepare(model)
    assert count() == trainable
