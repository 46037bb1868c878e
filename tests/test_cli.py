"""The ``labkit`` command line: listing without TensorFlow, help with examples, exact error lines
and exit codes, a quiet start, and a train → rerun round trip."""

import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from helpers import error_line

from labkit import __version__
from labkit.cli import main


def test_version(cli):
    result = cli("--version")
    assert result.exit_code == 0 and __version__ in result.output


@pytest.mark.parametrize("args", [["--help"], ["recipes"], ["data"], ["lab", "list"],
                                  ["notebook"], ["describe", "cnn", "--set", "filters=[8,16]"]])
def test_listing_commands_do_not_import_tensorflow(args):
    """…and describe loads Keras on its numpy backend without leaving KERAS_BACKEND set for
    the caller and its child processes."""
    code = (
        "import os, sys; from click.testing import CliRunner; from labkit.cli import main\n"
        "os.environ.pop('KERAS_BACKEND', None)\n"
        f"r = CliRunner().invoke(main, {args!r})\n"
        "assert r.exit_code == 0, r.output\n"
        "assert 'KERAS_BACKEND' not in os.environ\n"
        "print('TF' if 'tensorflow' in sys.modules else 'no TF')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().endswith("no TF")


def _commands(group, prefix=()):
    """Every command of the CLI as its words, groups and their subcommands alike."""
    import click

    for name, command in sorted(group.commands.items()):
        yield (*prefix, name)
        if isinstance(command, click.Group):
            yield from _commands(command, (*prefix, name))


@pytest.mark.parametrize("words", list(_commands(main)), ids=" ".join)
def test_every_command_help_has_an_example(cli, words):
    result = cli(*words, "--help")
    assert result.exit_code == 0 and "Example:" in result.output, result.output


def test_recipes_lists_name_summary_topic(cli):
    result = cli("recipes")
    assert result.exit_code == 0
    assert "cnn" in result.output and "lecture: 19 Convolutional layer" in result.output


def test_describe_shows_defaults_current_values_and_parameter_count(cli):
    result = cli("describe", "cnn", "--set", "filters=[8,16]", "--dataset", "digits")
    assert result.exit_code == 0, result.output
    assert "filters              (32, 64)               [8, 16]   (set)" in result.output
    assert "block2_conv" in result.output
    # 8*9+8, 16*(9*8)+16, (2*2*16)*10+10 parameters
    assert f"Parameters: {80 + 1168 + 650:,}" in result.output


@pytest.mark.parametrize(("args", "line"), [
    (["train", "cnnn"],
     "Error: Unknown recipe 'cnnn'. Did you mean: cnn, cnn1d? See `labkit recipes` for the list."),
    (["train", "cnn", "--dataset", "mnistt"],
     "Error: Unknown dataset 'mnistt'. Did you mean: mnist? Known: digits, circle, xor, gauss, "
     "spiral, plane, multi-gauss, control_charts, mnist, fashion_mnist, cifar10, a path to an "
     "image folder, a "
     ".csv or .npz file, or tfds:NAME."),
    (["train", "cnn", "--set", "dropout"],
     "Error: --set takes key=value, e.g. --set dropout=0.2. Received: 'dropout'"),
    (["train", "cnn", "--set", "dropuot=0.1"],
     "Error: Recipe 'cnn' has no hyperparameter 'dropuot'. Did you mean: dropout? Known: filters, "
     "kernel_size, padding, strides, pooling, pool_size, dense_units, dropout, activation, "
     "batch_norm, l1, l2, kernel_initializer, bias_initializer."),
    (["train", "cnn", "--epochs", "-1"], "Error: --epochs must be an integer >= 1. Received: -1"),
    (["train", "cnn", "--set", "dropout=1.5"],
     "Error: `dropout` must be in [0, 1). Received: dropout=1.5"),
    (["train", "cnn", "--set", "filters=0"],
     "Error: `filters` must hold positive integers. Received: filters=[0]"),
    (["train", "cnn", "--dataset", "spiral"],
     "Error: Recipe 'cnn' takes image inputs; dataset 'spiral' has input shape (2,). Try `mlp` "
     "or an image dataset."),
    (["train", "cnn", "--validation-split", "1.5"],
     "Error: --validation-split must be in [0, 1). Received: 1.5"),
    (["train", "cnn", "--learning-rate", "0"],
     "Error: --learning-rate must be a number > 0. Received: 0.0"),
    (["train"], "Error: Name a RECIPE (see `labkit recipes`) or pass --config FILE."),
    (["train", "--resume", "nowhere"],
     "Error: Run directory 'nowhere' does not exist. See `labkit runs`."),
    (["describe", "cnn", "--input-shape", "150x"],
     "Error: --input-shape is sizes joined by x, e.g. 150x150x3. Received: '150x'"),
    (["describe", "cnn", "--set", "padding=valid"],
     "Error: The input (8x8) is too small for these layers: block1_conv 8x8 → 6x6, block1_pool "
     "6x6 → 3x3, block2_conv 3x3 → 1x1, block2_pool 1x1 → 0x0. Use padding='same', fewer conv "
     "layers, pooling='none' on some layers, or a smaller kernel_size / pool_size."),
    (["evaluate", "no/such/run"],
     "Error: Run directory 'no/such/run' does not exist. See `labkit runs`."),
    (["export", "no/such/run"],
     "Error: Run directory 'no/such/run' does not exist. See `labkit runs`."),
    (["runs", "--runs-dir", "no/such/dir"], "Error: Runs directory 'no/such/dir' does not exist."),
])
def test_errors_are_one_line_without_traceback(cli, tmp_path, args, line):
    result = cli(*args, "--runs-dir", tmp_path) if args[:2] != ["train", "--resume"] and \
        args[0] == "train" else cli(*args)
    assert result.exit_code == 1
    assert error_line(result) == line
    assert not list(tmp_path.iterdir())  # nothing written before the error


def test_a_bad_choice_is_a_usage_error_exit_2(cli):
    result = cli("train", "cnn", "--optimizer", "adamw")
    assert result.exit_code == 2
    assert result.output.splitlines()[-1] == ("Error: Invalid value for '--optimizer': 'adamw' is "
                                              "not one of 'sgd', 'momentum', 'nesterov', "
                                              "'rmsprop', 'adam'.")


def test_train_help_takes_defaults_from_the_config():
    from labkit.cli import DEFAULTS
    from labkit.config import TrainConfig

    assert DEFAULTS["epochs"] == TrainConfig.epochs and DEFAULTS["seed"] == TrainConfig.seed


def test_describe_shows_a_recipes_own_training_defaults(cli):
    result = cli("describe", "playground", "--no-summary")
    assert result.exit_code == 0, result.output
    assert ("training defaults: optimizer=sgd, learning_rate=0.03, batch_size=10, "
            "epochs=100, validation_split=0.0") in result.output


QUIET_IMPORT = "from labkit._startup import import_tensorflow; import_tensorflow(); print('ok')"


def start_tensorflow(**env):
    base = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL",
                                                             "LABKIT_VERBOSE")}
    return subprocess.run([sys.executable, "-c", QUIET_IMPORT], capture_output=True, text=True,
                          env={**base, **env}, check=True)


def test_tensorflow_start_up_messages_are_hidden():
    quiet = start_tensorflow()
    assert quiet.stdout == "ok\n" and quiet.stderr == ""


@pytest.mark.slow  # a cold start under JAX, and the quick dropout lab: ~15 s
def test_a_lab_under_jax_prints_no_tensorflow_lines(tmp_path):
    """keras.utils.set_random_seed imports TensorFlow on every backend; it must be quiet there
    too."""
    pytest.importorskip("jax")
    base = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL",
                                                             "LABKIT_VERBOSE")}
    done = subprocess.run([sys.executable, "-m", "labkit", "lab", "run", "dropout", "--quick",
                           "--out", str(tmp_path)], capture_output=True, text=True,
                          env={**base, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"},
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.startswith("dropout: ")
    for noise in ("oneDNN", "absl", "cudart", "cuInit"):
        assert noise not in done.stdout + done.stderr


@pytest.mark.slow
def test_tensorflow_start_up_messages_are_replayed_when_verbose():
    loud = start_tensorflow(LABKIT_VERBOSE="1")
    assert loud.stdout == "ok\n" and loud.stderr.strip()


def test_train_end_to_end_and_rerun_from_config(cli, tmp_path):
    result = cli("train", "mlp", "--dataset", "xor", "--epochs", "2", "--set", "units=[8]",
                 "--runs-dir", tmp_path, "--name", "first", "--learning-rate", "0.01",
                 "--data-option", "noise=0.1")
    assert result.exit_code == 0, result.output
    assert f"Run directory: {tmp_path / 'first'}" in result.output
    assert "best_val_accuracy" in result.output and "test_accuracy" in result.output
    first = json.loads((tmp_path / "first" / "config.json").read_text())
    result = cli("train", "--config", tmp_path / "first" / "config.json", "--name", "second",
                 "--epochs", "3")
    assert result.exit_code == 0, result.output
    second = json.loads((tmp_path / "second" / "config.json").read_text())
    assert second["epochs"] == 3 and second["hparams"] == first["hparams"]
    assert second["data_options"] == {"noise": 0.1} and second["learning_rate"] == 0.01
    assert len(pd.read_csv(tmp_path / "second" / "history.csv")) == 3


def test_data_path_describes_an_npz_without_tensorflow(tmp_path):
    np.savez(tmp_path / "d.npz", x=np.zeros((50, 4, 4), np.uint8), y=np.arange(50) % 2)
    code = (
        "import sys; from click.testing import CliRunner; from labkit.cli import main\n"
        f"r = CliRunner().invoke(main, ['data', {str(tmp_path / 'd.npz')!r}])\n"
        "print(r.exit_code); print(r.output, end='')\n"
        "print('TF' if 'tensorflow' in sys.modules else 'no TF')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.splitlines()
    assert out == [
        "0",
        f"{tmp_path / 'd.npz'}: npz, task binary, input shape (4, 4, 1), 2 classes, values "
        "divided by 255 in the model",
        "  train       32 examples  0: 16, 1: 16",
        "  val          8 examples  0: 4, 1: 4",
        "  test        10 examples  0: 5, 1: 5",
        "no TF",
    ]


def test_data_name_of_the_catalog_points_to_the_listing(cli):
    result = cli("data", "digits")
    assert result.exit_code == 1
    assert error_line(result) == ("Error: `labkit data NAME` describes path datasets; 'digits' is "
                                  "in the catalog: run `labkit data` to list it.")
