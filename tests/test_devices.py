"""Precision policies and tf.distribute (labkit.devices): mixed precision's dtypes, its fallback,
a mirrored run on two logical CPU devices, and the options' errors."""

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from helpers import error_line

import labkit
from labkit import devices, runs
from labkit.errors import LabkitError


def test_mixed_precision_computes_in_bfloat16_and_keeps_float32_where_it_matters(
        tmp_path, monkeypatch):
    monkeypatch.setattr(devices, "has_gpu", lambda: False)
    monkeypatch.setattr(devices, "cpu_supports_bfloat16", lambda: True)
    run = labkit.train("mlp", dataset="digits", epochs=1, units=[8], precision="mixed",
                       runs_dir=str(tmp_path), name="mixed", echo=lambda _: None)
    assert run.config["precision"] == "mixed"
    assert run.config["derived"]["dtype_policy"] == "mixed_bfloat16"
    model = runs.unwrap(run.model)
    hidden, head = model.get_layer("fc1"), model.get_layer("predictions")
    assert (hidden.compute_dtype, hidden.variable_dtype) == ("bfloat16", "float32")
    assert (head.compute_dtype, head.variable_dtype) == ("float32", "float32")
    x = labkit.data.load("digits").test[0][:4]
    assert run.model.predict(x, verbose=0).dtype == np.float32
    import keras

    assert keras.config.dtype_policy().name == "float32"  # the session's policy is put back
    report = labkit.evaluate(run)  # the saved layers keep their policies
    assert report["test_accuracy"] == pytest.approx(run.metrics["test_accuracy"], abs=1e-6)


def test_a_resumed_mixed_run_keeps_its_policy(tmp_path, monkeypatch):
    from labkit import callbacks, training

    monkeypatch.setattr(devices, "has_gpu", lambda: False)
    monkeypatch.setattr(devices, "cpu_supports_bfloat16", lambda: True)
    finish_epoch = callbacks.RunRecorder.on_epoch_end

    def stop_after_first_epoch(self, epoch, logs=None):  # as Ctrl-C during epoch 2 would
        finish_epoch(self, epoch, logs)
        self.stop.set()

    monkeypatch.setattr(callbacks.RunRecorder, "on_epoch_end", stop_after_first_epoch)
    with pytest.raises(training.Interrupted) as stopped:
        labkit.train("mlp", dataset="digits", epochs=2, units=[8], precision="mixed",
                     runs_dir=str(tmp_path), name="r", echo=lambda _: None)
    monkeypatch.setattr(callbacks.RunRecorder, "on_epoch_end", finish_epoch)
    monkeypatch.setattr(devices, "cpu_supports_bfloat16", lambda: False)  # policy from the run
    resumed = training.resume(stopped.value.run.path, echo=lambda _: None)
    assert resumed.metrics["epochs_completed"] == 2
    assert runs.unwrap(resumed.model).get_layer("fc1").compute_dtype == "bfloat16"


def test_without_bfloat16_or_a_gpu_mixed_falls_back_to_float32_with_a_note(monkeypatch):
    monkeypatch.setattr(devices, "has_gpu", lambda: False)
    monkeypatch.setattr(devices, "cpu_supports_bfloat16", lambda: False)
    policy, note = devices.policy_for("mixed")
    assert policy == "float32" and note.startswith("--precision mixed: this CPU has no bfloat16")
    monkeypatch.setattr(devices, "has_gpu", lambda: True)
    assert devices.policy_for("mixed") == ("mixed_float16", None)
    assert devices.policy_for("float32") == ("float32", None)


SCRIPT = """
import json, sys
import labkit
results = []
for options in json.loads(sys.argv[1]):  # mirrored first: it makes the logical devices
    run = labkit.train("mlp", dataset=sys.argv[2], units=[16], epochs=2, seed=3,
                       optimizer="sgd", learning_rate=0.1, validation_split=0.25,
                       runs_dir=sys.argv[3], echo=lambda _: None, **options)
    weights = [w.tolist() for w in labkit.runs.unwrap(run.model).get_weights()]
    results.append({"weights": weights, "replicas": run.config["derived"]["replicas"],
                    "loss": run.history["loss"].tolist()})
print(json.dumps(results))
"""


def train_in_a_process(option_sets, dataset, runs_dir):
    """Logical devices exist only in a fresh TensorFlow: train in a child process, the runs one
    after another."""
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(SCRIPT), json.dumps(option_sets),
                           str(dataset), str(runs_dir)], capture_output=True, text=True,
                          check=False, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def even_digits(digits_npz):
    """1 280 digits: 1 024 to train on, 768 after validation, so batches split evenly."""
    return digits_npz(1280)


@pytest.mark.slow  # three trainings in a fresh process: ~13 s
def test_mirrored_on_two_logical_devices_matches_one_device(even_digits, tmp_path):
    """The full batch split over two replicas gives the gradient one device computes: the
    same weights."""
    two, one = train_in_a_process([
        {"name": "two", "batch_size": "full", "distribute": "mirrored", "devices": 2},
        {"name": "one", "batch_size": "full"}], even_digits, tmp_path)
    assert (one["replicas"], two["replicas"]) == (1, 2)
    for a, b in zip(one["weights"], two["weights"], strict=True):
        np.testing.assert_allclose(a, b, atol=1e-5)


@pytest.mark.slow
def test_mirrored_minibatches_train_as_one_device_does(even_digits, tmp_path):
    """With minibatches Keras's distributed input draws the shuffled batches in another order
    (plain Keras under MirroredStrategy does too), so the runs agree in their losses, not
    weight for weight."""
    mini, single = train_in_a_process([
        {"name": "mini", "batch_size": 32, "distribute": "mirrored", "devices": 2},
        {"name": "single", "batch_size": 32}], even_digits, tmp_path)
    assert mini["replicas"] == 2
    np.testing.assert_allclose(mini["loss"], single["loss"], rtol=0.05)


@pytest.mark.parametrize(("args", "line"), [
    (["--devices", "2"], "Error: --devices applies to --distribute mirrored or data-parallel "
                         "(logical CPU devices)."),
    (["--distribute", "mirrored", "--devices", "0"], "Error: --devices must be an integer >= 1. "
                                                     "Received: 0"),
    (["--distribute", "multi-worker"], "Error: --distribute multi-worker is not available: "
     "Keras 3's Model.fit fails under tf.distribute.MultiWorkerMirroredStrategy "
     "(keras-team/keras#20585). Across processes and machines use --distribute data-parallel "
     "with KERAS_BACKEND=jax (keras.distribution; labkit launch starts the processes); on one "
     "machine with several GPUs, --distribute mirrored."),
])
def test_bad_placement_options(cli, tmp_path, args, line):
    result = cli("train", "mlp", "--runs-dir", tmp_path / "runs", *args)
    assert result.exit_code == 1
    assert error_line(result) == line
    assert not (tmp_path / "runs").exists()


def test_logical_devices_after_tensorflow_started_is_a_clear_error():
    import tensorflow as tf

    tf.constant(1.0)  # TensorFlow has run something in this process
    with pytest.raises(LabkitError, match="--devices 3: TensorFlow has already started"):
        devices.strategy("mirrored", 3)


JAX_SCRIPT = """
import json, sys
import keras
import labkit
from labkit import callbacks, export, training

assert keras.backend.backend() == "jax"
finish_epoch = callbacks.RunRecorder.on_epoch_end

def stop_after_first_epoch(self, epoch, logs=None):
    finish_epoch(self, epoch, logs)
    self.stop.set()

callbacks.RunRecorder.on_epoch_end = stop_after_first_epoch
try:
    labkit.train("cnn", dataset="digits", epochs=3, filters=[8, 16], runs_dir=sys.argv[1],
                 name="jax", class_weight="balanced", augment="noise=0.05",
                 echo=lambda _: None)
except training.Interrupted as stopped:
    path = stopped.run.path
callbacks.RunRecorder.on_epoch_end = finish_epoch
run = training.resume(path, echo=lambda _: None)
report = labkit.evaluate(run)
[exported] = export.export(run.path, "keras")
print(json.dumps({"backend": run.config["versions"]["backend"],
                  "epochs": run.metrics["epochs_completed"], "status": run.metrics["status"],
                  "test_accuracy": report["test_accuracy"],
                  "trained_accuracy": run.metrics["test_accuracy"],
                  "export_diff": exported["max_abs_diff"]}))
"""


@pytest.mark.slow
def test_training_runs_on_the_jax_backend_without_tf_data(tmp_path):
    """train → interrupt → resume → evaluate → export .keras, all under KERAS_BACKEND=jax."""
    pytest.importorskip("jax")
    import os

    done = subprocess.run([sys.executable, "-c", textwrap.dedent(JAX_SCRIPT), str(tmp_path)],
                          capture_output=True, text=True, check=False, timeout=600,
                          env={**os.environ, "KERAS_BACKEND": "jax"})
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert (result["backend"], result["epochs"], result["status"]) == ("jax", 3, "completed")
    assert result["test_accuracy"] == pytest.approx(result["trained_accuracy"], abs=1e-6)
    assert result["export_diff"] <= 1e-5


def test_a_faster_path_that_is_off_is_one_note(monkeypatch, cli, tmp_path):
    monkeypatch.setattr(devices, "has_gpu", lambda: False)
    monkeypatch.setattr(devices, "cpu_supports_bfloat16", lambda: True)
    assert devices.faster_path("mixed") is None
    result = cli("train", "mlp", "--dataset", "xor", "--set", "units=[4]", "--epochs", "1",
                 "--runs-dir", tmp_path, "--name", "bf16")
    notes = [line for line in result.output.splitlines() if "computes bfloat16" in line]
    assert notes == [devices.faster_path("float32")]
    assert notes[0].startswith("note: this CPU computes bfloat16; --precision mixed trained "
                               "~1.6× faster")
    monkeypatch.setattr(devices, "cpu_supports_bfloat16", lambda: False)
    assert devices.faster_path("float32") is None
    result = cli("train", "mlp", "--dataset", "xor", "--set", "units=[4]", "--epochs", "1",
                 "--runs-dir", tmp_path, "--name", "plain")
    assert "bfloat16" not in result.output


def test_labkit_devices_lists_each_device_with_its_precisions(cli, monkeypatch):
    monkeypatch.setattr(devices, "cpu_supports_bfloat16", lambda: True)
    result = cli("devices")
    assert result.exit_code == 0, result.output
    import keras

    rows = [line.split() for line in result.output.splitlines()]
    assert rows and all(row[1] in ("cpu", "gpu") for row in rows)
    assert any(row[1] == "cpu" and row[2] == keras.backend.backend() and
               " ".join(row[3:]) == "float32, mixed (bfloat16)" for row in rows)


def test_steps_per_execution_groups_steps_without_changing_what_is_learned(tmp_path, cli):
    from labkit import training

    assert training.steps_per_execution(4, 36, 10**9) == 4
    assert training.steps_per_execution(100, 36, 1) == 36  # never more than an epoch's steps
    assert training.steps_per_execution("auto", 36, 16 * 38_410) == 16  # the tiny mlp: grouped
    assert training.steps_per_execution("auto", 5, 16 * 38_410) == 5
    assert training.steps_per_execution("auto", 36, 256 * 21_386) == 1  # a large step: not
    trained = {}
    for steps in ("1", "auto"):
        result = cli("train", "mlp", "--epochs", "2", "--steps-per-execution", steps,
                     "--runs-dir", tmp_path, "--name", f"spe-{steps}")
        assert result.exit_code == 0, result.output
        run = runs.open_run(tmp_path / f"spe-{steps}")
        trained[steps] = (run.config["derived"]["steps_per_execution"],
                          runs.unwrap(run.model).get_weights())
    assert trained["1"][0] == 1 and trained["auto"][0] == 16
    for one, grouped in zip(trained["1"][1], trained["auto"][1], strict=True):
        np.testing.assert_allclose(one, grouped, atol=1e-5)
    assert error_line(cli("train", "mlp", "--steps-per-execution", "often")) == (
        'Error: --steps-per-execution must be an integer >= 1 or "auto". Received: \'often\'')
    assert error_line(cli("train", "mlp", "--steps-per-execution", "0")) == (
        'Error: --steps-per-execution must be an integer >= 1 or "auto". Received: 0')
