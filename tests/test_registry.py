import numpy as np
import pytest

import labkit
from labkit import registry
from labkit.errors import LabkitError

SHAPES = {"image": [(8, 8, 1), (32, 32, 3)], "sequence": [(60, 1)], "any": [(8, 8, 1), (2,)],
          "points": [(2,)]}
# Offline stand-ins for defaults that need the network or another run.
OFFLINE = {"vgg16_transfer": {"weights": "none"}, "vgg16": {"width": 0.25},
           "ensemble": {"member": "mlp", "k": 2, "member_hparams": {"units": [8]}}}


def cases():
    for name in labkit.list_recipes():
        for shape in SHAPES[labkit.get_recipe(name).inputs]:
            yield name, shape


@pytest.mark.parametrize(("name", "input_shape"), list(cases()))
def test_every_recipe_builds_and_predicts(name, input_shape, base_run):
    kwargs = {**OFFLINE.get(name, {})}
    if "base" in labkit.get_recipe(name).hyperparameters:
        kwargs["base"] = str(base_run(input_shape))
    num_classes = 2 if len(input_shape) == 1 else 3
    model = labkit.build(name, input_shape=input_shape, num_classes=num_classes, **kwargs)
    x = np.random.default_rng(0).random((4, *input_shape), dtype="float32")
    probabilities = model.predict(x, verbose=0)
    assert probabilities.shape == (4, num_classes)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    assert model.get_layer("predictions") is model.layers[-1]
    assert not model.compiled


def test_registry_lists_sorted_and_filters():
    names = labkit.list_recipes()
    assert names == sorted(names) and {"mlp", "cnn"} <= set(names)
    assert labkit.list_recipes("c*") == [n for n in names if n.startswith("c")]


def test_unknown_recipe_suggests_close_match():
    with pytest.raises(LabkitError, match="Did you mean: cnn"):
        labkit.get_recipe("cnnn")


def test_duplicate_name_is_an_error():
    registry.recipe("dup_test", summary="s", topic=1)(lambda input_shape, num_classes: None)
    with pytest.raises(ValueError, match="already registered"):
        registry.recipe("dup_test", summary="s", topic=1)(lambda input_shape, num_classes: 1)
    del registry._REGISTRY["dup_test"]


def test_labkit_never_imports_the_recipes_it_finds_them_as_plugins():
    """The library depends on no recipe package: none of its modules names ``recipes`` in an
    import, and the course's recipes come through the ``labkit.recipes`` entry point."""
    import ast
    from pathlib import Path

    root = Path(labkit.__file__).parent
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            assert not any(n == "recipes" or n.startswith("recipes.") for n in names), path
    assert "recipes" in registry.recipe_modules()


def test_more_recipe_packages_come_from_labkit_recipes(tmp_path, monkeypatch):
    package = tmp_path / "my_recipes"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "tiny.py").write_text(
        "from labkit.registry import recipe\n\n"
        "@recipe('tiny_test', summary='a test recipe', topic=1)\n"
        "def build(input_shape, num_classes, task='classification', *, units=4):\n"
        "    return None\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv(registry.EXTRA, "my_recipes")
    monkeypatch.setattr(registry, "_load_all", registry._load_all.__wrapped__)
    try:
        assert "tiny_test" in labkit.list_recipes()
        assert labkit.get_recipe("tiny_test").hyperparameters == {"units": 4}
    finally:
        registry._REGISTRY.pop("tiny_test", None)
    monkeypatch.setenv(registry.EXTRA, "no_such_recipes")
    with pytest.raises(LabkitError, match="Recipe package 'no_such_recipes' .* cannot be "
                                          "imported"):
        labkit.list_recipes()


def test_hyperparameters_come_from_the_signature():
    hparams = labkit.get_recipe("cnn").hyperparameters
    assert hparams["filters"] == (32, 64) and hparams["dropout"] == 0.5
    assert "input_shape" not in hparams and "num_classes" not in hparams


def test_cnn_defaults_are_the_course_convnet():
    model = labkit.build("cnn", input_shape=(28, 28, 1), num_classes=10)
    kinds = [type(layer).__name__ for layer in model.layers[1:]]
    assert kinds == ["Conv2D", "Activation", "MaxPooling2D", "Conv2D", "Activation",
                     "MaxPooling2D", "Flatten", "Dropout", "Dense"]
    assert model.get_layer("block1_conv").filters == 32
    assert model.get_layer("block2_conv").filters == 64
    assert model.get_layer("predictions_dropout").rate == 0.5


def test_cnn_expresses_the_r_lab_model():
    model = labkit.build("cnn", input_shape=(28, 28, 1), num_classes=10, filters=[32, 64, 64],
                         pooling=["max", "max", "none"], dense_units=[64], dropout=0,
                         padding="valid")
    assert model.get_layer("block3_conv").output.shape[1:] == (3, 3, 64)
    assert model.get_layer("fc1").units == 64
    assert model.count_params() == 93_322  # the R lab's summary reports the same total
    with pytest.raises(ValueError):
        model.get_layer("block3_pool")


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"dropout": 1.5}, r"`dropout` must be in \[0, 1\). Received: dropout=1.5"),
    ({"filters": 0}, r"`filters` must hold positive integers. Received: filters=\[0\]"),
    ({"pooling": "min"}, r"`pooling` must be one of max, average, none. Received: pooling='min'"),
    ({"padding": ["same"]}, r"`padding` needs one value per layer \(2\)"),
    ({"kernel_size": 0}, r"`kernel_size` must be a positive int"),
    ({"activation": "relux"}, r"`activation` must be one of"),
])
def test_cnn_rejects_bad_hyperparameters(kwargs, message):
    with pytest.raises(ValueError, match=message):
        labkit.build("cnn", input_shape=(28, 28, 1), num_classes=10, **kwargs)


def test_input_too_small_is_explained_before_building():
    with pytest.raises(ValueError) as info:
        labkit.build("cnn", input_shape=(8, 8, 1), num_classes=10, padding="valid")
    message = str(info.value)
    assert "block2_pool 1x1 → 0x0" in message and "padding='same'" in message


def test_kernel_size_pair_and_per_layer_lists():
    model = labkit.build("cnn", input_shape=(28, 28, 1), num_classes=10, filters=[4, 4, 4],
                         kernel_size=[3, 5, [1, 3]], pooling="none", dropout=0)
    assert [model.get_layer(f"block{i}_conv").kernel_size for i in (1, 2, 3)] == \
        [(3, 3), (5, 5), (1, 3)]
    pair = labkit.build("cnn", input_shape=(28, 28, 1), num_classes=10, kernel_size=[3, 5])
    assert pair.get_layer("block2_conv").kernel_size == (3, 5)


def test_mlp_hidden_layers_dropout_and_activation():
    model = labkit.build("mlp", input_shape=(2,), num_classes=2, units=[8, 4], activation="tanh",
                         dropout=[0.0, 0.1, 0.2])
    assert [model.get_layer(n).units for n in ("fc1", "fc2", "predictions")] == [8, 4, 2]
    assert model.get_layer("fc2_dropout").rate == 0.1
    assert model.get_layer("predictions_dropout").rate == 0.2
    assert model.get_layer("fc1_tanh").get_config()["activation"] == "tanh"


def test_topics_are_the_outlines_numbers():
    from labkit import lecture

    for name in labkit.list_recipes():
        recipe = labkit.get_recipe(name)
        assert set(recipe.topics) <= set(lecture.TOPICS), name
    assert labkit.get_recipe("cnn").topic == \
        "19 Convolutional layer / 20 Pooling / 21 Padding and stride"
    with pytest.raises(ValueError, match="numbered 0..22 as in the outline"):
        registry.recipe("bad_topic", summary="s", topic=23)


def test_unknown_hyperparameter_names_the_known_ones_and_a_close_match():
    with pytest.raises(LabkitError) as info:
        labkit.get_recipe("mlp").check_hyperparameters({"unit": [8]})
    assert str(info.value) == (
        "Recipe 'mlp' has no hyperparameter 'unit'. Did you mean: units? Known: units, "
        "activation, dropout, batch_norm, l1, l2, kernel_initializer, bias_initializer.")
