"""The training config (labkit.config): one resolve step that validates every option before
anything is written, config files, and reruns from a run's config.json."""

import json

import pytest
from helpers import error_line, fit

from labkit import layout
from labkit.config import RECORD_ONLY, TrainConfig, resolve_train_config


def test_config_file_round_trip_and_flags_override(cli, tmp_path):
    yaml_file = tmp_path / "exp.yaml"
    yaml_file.write_text("recipe: cnn\ndataset: digits\noptimizer: momentum\nmomentum: 0.8\n"
                         "schedule: inverse-time(tau=4)\nearly_stopping: {patience: 3}\n"
                         "augment: rotation=0.1\nhparams: {filters: [8]}\nbatch_size: full\n")
    first = cli("train", "--config", yaml_file, "--epochs", "7", "--print-config")
    assert first.exit_code == 0, first.output
    printed = json.loads(first.output)
    assert printed["epochs"] == 7 and printed["momentum"] == 0.8
    assert printed["schedule"] == {"name": "inverse-time", "tau": 4}
    assert printed["early_stopping"] == {"patience": 3, "min_delta": 0.0, "restore_best": True}
    assert printed["augment"] == {"rotation": 0.1} and printed["batch_size"] == "full"
    assert printed["hparams"]["filters"] == [8] and printed["hparams"]["kernel_size"] == 3
    assert printed["divergence_factor"] == 100.0
    json_file = tmp_path / "printed.json"
    json_file.write_text(first.output)
    second = cli("train", "--config", json_file, "--print-config")
    assert json.loads(second.output) == printed
    assert not (tmp_path / "runs").exists()  # --print-config trains nothing


def test_every_option_has_a_flag_and_round_trips():
    """A TrainConfig field is a `labkit train` option (hparams and data_options through
    --set and --data-option), and config.json's keys about the run are not options."""
    import dataclasses

    from labkit.cli import main

    flags = {p.name for p in main.commands["train"].params}
    nested = {"hparams": "assignments", "data_options": "data_assignments"}
    for field in dataclasses.fields(TrainConfig):
        assert nested.get(field.name, field.name) in flags, field.name
    assert not RECORD_ONLY & {f.name for f in dataclasses.fields(TrainConfig)}
    config = TrainConfig(recipe="mlp", dataset="digits", epochs=2)
    assert TrainConfig.from_dict(config.to_dict()) == config


def test_run_config_json_reruns_with_every_option(tmp_path):
    run = fit(tmp_path, epochs=1, optimizer="adam", beta_1=0.8, class_weight={3: 2.0},
              schedule="cosine", early_stopping="on", tensorboard=True)
    again = TrainConfig.from_dict(run.config).resolve()
    stored = {k: v for k, v in run.config.items()
              if k not in RECORD_ONLY}
    assert again.to_dict() == {**stored, "class_weight": {3: 2.0}}  # JSON keys are strings
    assert again.class_weight == {3: 2.0} and again.schedule == {"name": "cosine", "epochs": 1,
                                                                   "alpha": 0.0}
    events = list((run.path / layout.TENSORBOARD).rglob("events.out.tfevents*"))
    assert {p.parent.name for p in events} >= {"train", "validation"}


def test_resolve_spells_out_defaults_and_is_marked(tmp_path):
    config = TrainConfig(recipe="mlp")
    assert not config.is_resolved
    resolved = config.resolve()
    assert resolved.is_resolved and "_resolved" not in resolved.to_dict()
    assert resolved.learning_rate == 0.001 and resolved.monitor == "val_loss"
    assert resolved.hparams["units"] == (512,) and resolved.schedule == {"name": "constant"}
    assert resolved.resolve().to_dict() == resolved.to_dict()  # resolving twice changes nothing


def test_the_cli_resolves_once_and_training_does_not_again(cli, tmp_path, monkeypatch):
    calls = []
    original = TrainConfig.resolve

    def counted(self):
        calls.append(self.recipe)
        return original(self)

    monkeypatch.setattr(TrainConfig, "resolve", counted)
    result = cli("train", "mlp", "--set", "units=[8]", "--epochs", "1", "--runs-dir", tmp_path)
    assert result.exit_code == 0, result.output
    assert calls == ["mlp"]


def test_recipe_training_defaults_apply_unless_set():
    config = resolve_train_config(recipe="playground", flags={"dataset": "circle"})
    assert (config.optimizer, config.learning_rate, config.batch_size, config.epochs,
            config.validation_split) == ("sgd", 0.03, 10, 100, 0.0)
    config = resolve_train_config(recipe="playground", flags={"dataset": "circle", "epochs": 5})
    assert config.epochs == 5


@pytest.mark.parametrize(("args", "line"), [
    (["--learning-rate", "-1"], "Error: --learning-rate must be a number > 0. Received: -1.0"),
    (["--momentum", "1.5", "--optimizer", "momentum"],
     "Error: --momentum must be in [0, 1). Received: 1.5"),
    (["--rho", "0.5"], "Error: --rho applies to --optimizer rmsprop, not adam."),
    (["--beta-1", "0.5", "--optimizer", "sgd"],
     "Error: --beta-1 applies to --optimizer adam, not sgd."),
    (["--epsilon", "0"], "Error: --epsilon must be a number > 0. Received: 0.0"),
    (["--clipnorm", "-2"], "Error: --clipnorm must be a number > 0. Received: -2.0"),
    (["--clipvalue", "0"], "Error: --clipvalue must be a number > 0. Received: 0.0"),
    (["--schedule", "linear"], "Error: --schedule must be one of constant, exponential, "
     "inverse-time, step, piecewise, cosine, plateau. Received: 'linear'"),
    (["--schedule", "exponential(rate=2)"],
     "Error: --schedule exponential: rate must be in (0, 1]. Received: 2"),
    (["--schedule", "step(every=0)"],
     "Error: --schedule step: every must be > 0 (epochs). Received: 0"),
    (["--schedule", "cosine(warmup=3)"],
     "Error: --schedule cosine has no argument warmup. Known: epochs, alpha."),
    (["--schedule", "piecewise(boundaries=[5], factors=[1])"],
     "Error: --schedule piecewise: factors must be a list of 2 numbers > 0 (one more than "
     "boundaries). Received: [1]"),
    (["--schedule", "plateau(patience=-1)"],
     "Error: --schedule plateau: patience must be an integer >= 0. Received: -1"),
    (["--schedule", "inverse-time(tau=)"],
     "Error: --schedule: arguments must be key=value literals, got 'inverse-time(tau=)'. "
     "Example: --schedule 'exponential(rate=0.5, every=10)'."),
    (["--batch-size", "0"], 'Error: --batch-size must be an integer >= 1 or "full". Received: 0'),
    (["--batch-size", "all"],
     "Error: --batch-size must be an integer >= 1 or \"full\". Received: 'all'"),
    (["--early-stopping", "patience=-1"],
     "Error: --early-stopping patience must be an integer >= 0 (epochs). Received: -1"),
    (["--early-stopping", "wait=3"],
     "Error: --early-stopping has no wait. Known: patience, min_delta, restore_best."),
    (["--early-stopping", "restore_best=maybe"],
     "Error: --early-stopping restore_best must be true or false. Received: 'maybe'"),
    (["--augment", "blur"], "Error: --augment has no 'blur'. Known: flip, rotation, zoom, "
     "translation, contrast, noise (and fill=)."),
    (["--augment", "translation,fill=black"], "Error: --augment fill: how uncovered pixels are "
     "filled, one of reflect, constant, nearest, wrap. Received: 'black'"),
    (["--augment", "flip,fill=constant"],
     "Error: --augment fill applies to rotation, zoom, translation; none is given."),
    (["--augment", "rotation=2"], "Error: --augment rotation: the amount is the fraction of a "
     "full turn, in (0, 1]. Received: 2"),
    (["--augment", "flip=diagonal"], "Error: --augment flip: the amount is the horizontal, "
     "vertical or horizontal_and_vertical. Received: 'diagonal'"),
    (["--augment", "flip", "--dataset", "circle"], "Error: --augment flip needs image data "
     "(height, width, channels); this dataset's inputs have shape (2,). Only noise applies to it."),
    (["--class-weight", "0=1,12=3"], "Error: --class-weight: class 12 is not one of 0..9."),
    (["--class-weight", "0=-1"],
     "Error: --class-weight: weight of class 0 must be > 0. Received: -1.0"),
    (["--class-weight", "heavy"], "Error: --class-weight is balanced or CLASS=WEIGHT pairs, "
     "e.g. --class-weight 0=1,1=5. Received: 'heavy'"),
    (["--monitor", "val_loss", "--validation-split", "0"], "Error: --monitor val_loss needs "
     "validation data; --validation-split is 0. Use --monitor loss or accuracy."),
    (["--divergence-factor", "0.5"],
     "Error: --divergence-factor must be > 1, or 0 for off. Received: 0.5"),
    (["--data-option", "noise=0.1"],
     "Error: Dataset 'digits' takes no options. Received: {'noise': 0.1}"),
    (["--dataset", "circle", "--data-option", "nois=0.1"],
     "Error: Dataset 'circle' has no option 'nois'. Known: noise, num_samples, seed, ratio."),
])
def test_bad_training_options_are_one_error_line_before_training(cli, tmp_path, args, line):
    result = cli("train", "mlp", "--runs-dir", tmp_path / "runs", *args)
    assert result.exit_code == 1
    assert error_line(result) == line
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize(("option", "value", "choices"), [
    ("--optimizer", "adagrad", "'sgd', 'momentum', 'nesterov', 'rmsprop', 'adam'"),
    ("--monitor", "f1", "'val_loss', 'val_accuracy', 'val_auc', 'val_mae', 'loss', 'accuracy', "
                         "'auc', 'mae'"),
])
def test_a_value_outside_the_choices_is_a_usage_error(cli, tmp_path, option, value, choices):
    result = cli("train", "mlp", "--runs-dir", tmp_path / "runs", option, value)
    assert result.exit_code == 2
    assert result.output.splitlines()[-1] == \
        f"Error: Invalid value for '{option}': '{value}' is not one of {choices}."
    assert not (tmp_path / "runs").exists()


def test_resume_takes_no_other_options(cli, tmp_path):
    result = cli("train", "--resume", tmp_path, "--epochs", "3")
    assert result.exit_code == 1
    assert error_line(result) == \
        "Error: --resume continues a run with its saved config; drop --epochs."


@pytest.mark.parametrize(("dataset", "folder"), [
    ("digits", "cnn-digits-20261127-120000"),
    ("data/houses.csv", "cnn-houses.csv-20261127-120000"),
    ("pictures/cats_and_dogs/", "cnn-cats_and_dogs-20261127-120000"),
    ("tfds:cats_vs_dogs", "cnn-tfds-cats_vs_dogs-20261127-120000"),
])
def test_default_run_names_are_one_folder_even_for_path_datasets(dataset, folder):
    import datetime as dt

    config = TrainConfig("cnn", dataset=dataset)
    assert config.run_name(dt.datetime(2026, 11, 27, 12, 0, 0)) == folder
