"""Training (labkit.training): what a run does — steps, early stopping, checkpoints, augmentation
and class weights seen in its numbers; interruption, resume, divergence, determinism; the Python
front door ``labkit.train``."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import keras
import pandas as pd
import pytest
from helpers import error_line, fit, history

import labkit
from labkit import checkpoint, data, layout, runs, training
from labkit.data import pipeline
from labkit.errors import LabkitError

LABKIT = [str(Path(sys.executable).parent / "labkit")]  # the installed command


class InterruptAt(keras.callbacks.Callback):
    """Ctrl-C, simulated: KeyboardInterrupt as epoch ``epoch`` (1-based) begins, once."""

    def __init__(self, epoch: int, fired: list) -> None:
        super().__init__()
        self.epoch, self.fired = epoch, fired

    def on_epoch_begin(self, epoch, logs=None):
        if epoch + 1 == self.epoch and not self.fired:
            self.fired.append(epoch)
            raise KeyboardInterrupt


@pytest.fixture
def interrupt_at(monkeypatch):
    """``interrupt_at(k)``: training is interrupted once, as epoch k begins."""
    def arm(epoch):
        original, fired = training.training_controls, []

        def controls(*args, **kwargs):
            return [*original(*args, **kwargs), InterruptAt(epoch, fired)]

        monkeypatch.setattr(training, "training_controls", controls)

    return arm


# --- steps, early stopping, checkpoints -------------------------------------------------------

@pytest.mark.parametrize(("batch_size", "shape", "distribute", "splits", "expected"), [
    (16, (8, 8, 1), None, (288, 360), 72),  # both splits in steps of one shape
    (16, (8, 8, 1), None, (288,), 288),  # the validation split in one step
    (16, (8, 8, 1), None, (137, 171), 137),  # nothing divides both: validation whole
    (16, (28, 28, 1), None, (6000, 10000), 1000),  # MNIST
    (16, (8, 8, 1), None, (5003,), 1024),  # at most 1 024 examples
    (16, (32, 32, 3), None, (), 341),  # at most 1 M input values
    (32, (150, 150, 3), None, (100, 100), 32),  # large inputs: the training batch
    (2000, (2,), None, (100,), 1024),  # full batch
    (16, (8, 8, 1), "data-parallel", (288, 360), 16),  # every device splits it evenly
])
def test_evaluation_batches(batch_size, shape, distribute, splits, expected):
    assert training.eval_batch_size(batch_size, shape, distribute, splits) == expected


def test_a_larger_validation_batch_changes_no_metric(tmp_path):
    run = fit(tmp_path, epochs=1, batch_size=16)
    loaded = data.load("digits")
    x, y = pipeline.inputs(loaded.val, 16, prep=loaded.spec.preprocessing)
    assert run.config["derived"]["eval_batch_size"] == 72  # divides validation and test
    model = runs.load_model(run, layout.LAST)
    in_sixteens = model.evaluate(x, y, batch_size=16, verbose=0, return_dict=True)
    row = history(run).iloc[-1]
    assert row["val_accuracy"] == pytest.approx(in_sixteens["accuracy"], abs=1e-7)
    assert row["val_loss"] == pytest.approx(in_sixteens["loss"], rel=1e-5)


@pytest.mark.parametrize(("batch_size", "steps"), [("full", 1), (1, 200), (64, 4)])
def test_batch_size_from_one_example_to_the_whole_set(tmp_path, batch_size, steps):
    run = fit(tmp_path, dataset="circle", epochs=2, batch_size=batch_size)
    derived = run.config["derived"]
    assert derived["train_examples"] == 200 and derived["steps_per_epoch"] == steps
    state = checkpoint.read(run.file(layout.LAST))
    assert int(state.optimizer[0]) == 2 * steps  # the optimizer took exactly that many steps


def test_early_stopping_stops_on_a_plateau_and_restores_the_best_weights(tmp_path):
    run = fit(tmp_path, epochs=20, optimizer="sgd", learning_rate=0.3,
              early_stopping={"patience": 2, "min_delta": 5.0})
    metrics, rows = run.metrics, history(run)
    # epoch 1 sets the best; no later gain reaches min_delta (a plateau at that resolution)
    assert metrics["stopped_epoch"] == 3 and len(rows) == 3
    assert metrics["restored_epoch"] == 1
    loaded = data.load("digits")
    val_loss = run.model.evaluate(*pipeline.inputs(loaded.val, 32),  # model.keras: raw inputs
                                  verbose=0, return_dict=True)["loss"]
    assert val_loss == pytest.approx(rows["val_loss"][0], rel=1e-4)  # epoch 1's weights
    assert val_loss > rows["val_loss"][2] + 0.05  # not the last epoch's


def test_best_checkpoint_follows_the_monitor(tmp_path):
    run = fit(tmp_path, epochs=3, monitor="val_accuracy")
    rows = history(run)
    assert run.metrics["best_epoch"] == int(rows.loc[rows["val_accuracy"].idxmax(), "epoch"])
    assert checkpoint.read(run.file(layout.BEST)).state["epoch"] == run.metrics["best_epoch"]


def test_augmentation_changes_training_inputs_only(tmp_path):
    plain = fit(tmp_path, epochs=1, name="plain")
    noisy = fit(tmp_path, epochs=1, name="noisy", augment="noise=1")
    assert history(noisy)["loss"][0] > history(plain)["loss"][0] + 0.2  # training saw noise
    loaded = data.load("digits")
    model = noisy.model
    clean = model.evaluate(*pipeline.inputs(loaded.val, 32), verbose=0, return_dict=True)
    assert clean["loss"] == pytest.approx(history(noisy)["val_loss"][0], rel=1e-4)
    assert not any("Noise" in type(layer).__name__ for layer in model.layers)


def test_class_weights_change_the_training_loss(tmp_path):
    plain = fit(tmp_path, epochs=1, name="plain", learning_rate=1e-9)
    heavy = fit(tmp_path, epochs=1, name="heavy", learning_rate=1e-9,
                class_weight={0: 50.0})
    ratio = history(heavy)["loss"][0] / history(plain)["loss"][0]
    assert ratio > 3  # class 0's examples count 50 times
    assert history(heavy)["val_loss"][0] == pytest.approx(history(plain)["val_loss"][0],
                                                          rel=1e-3)  # validation unweighted


# --- interruption, resume, divergence, determinism --------------------------------------------

def test_resume_restores_early_stopping_and_plateau_counters(tmp_path, interrupt_at):
    options = {"epochs": 20, "optimizer": "sgd", "learning_rate": 0.3,
               "early_stopping": {"patience": 3, "min_delta": 5.0},
               "schedule": "plateau(factor=0.5, patience=1, min_delta=5.0)"}
    interrupt_at(3)
    with pytest.raises(training.Interrupted) as stop:
        fit(tmp_path, **options)
    run = stop.value.run
    assert run.metrics["status"] == "interrupted" and len(history(run)) == 2
    saved = checkpoint.read(run.file(layout.LAST)).state
    assert saved["controls"]["EarlyStopping"]["wait"] == 1
    training.resume(run.path, echo=lambda _: None)
    rows = history(run)
    # restarted counters would stop at epoch 5 (2 + 3); restored ones stop at epoch 4
    assert rows["epoch"].tolist() == [1, 2, 3, 4] and run.metrics["stopped_epoch"] == 4
    assert rows[layout.LEARNING_RATE].tolist() == pytest.approx([0.3, 0.3, 0.15, 0.075])
    assert run.metrics["status"] == "completed" and run.metrics["restored_epoch"] == 1


def test_resume_continues_a_multi_phase_plan(tmp_path, interrupt_at):
    interrupt_at(5)  # second epoch of the second member
    with pytest.raises(training.Interrupted) as stop:
        fit(tmp_path, recipe="ensemble", hparams={"k": 2, "member": "mlp",
                                                  "member_hparams": {"units": [8]}}, epochs=3)
    run = stop.value.run
    training.resume(run.path, echo=lambda _: None)
    rows = history(run)
    assert rows["epoch"].tolist() == [1, 2, 3, 4, 5, 6]
    assert rows["phase"].tolist() == ["member_1"] * 3 + ["member_2"] * 3
    assert (run.path / layout.MODEL).exists() and "test_accuracy" in run.metrics


def test_a_stop_set_from_another_thread_stops_at_the_epoch_boundary(tmp_path, monkeypatch):
    """The stop event is the one channel: set from another thread (or by a signal handler whose
    KeyboardInterrupt Keras's saving code swallowed), the run stops once the epoch is saved,
    and the next run with a fresh event is not affected."""
    import threading

    stop = threading.Event()

    class OtherThreadAt(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch + 1 == 2:
                setter = threading.Thread(target=stop.set)
                setter.start()
                setter.join()

    original = training.training_controls
    monkeypatch.setattr(training, "training_controls",
                        lambda *a, **k: [*original(*a, **k), OtherThreadAt()])
    with pytest.raises(training.Interrupted) as stopped:
        fit(tmp_path, epochs=5, stop=stop)
    run = stopped.value.run
    assert run.metrics["status"] == "interrupted" and len(history(run)) == 2
    assert checkpoint.read(run.file(layout.LAST)).state["epoch"] == 2
    monkeypatch.setattr(training, "training_controls", original)
    again = fit(tmp_path, epochs=1)  # a run of its own: nothing left over from the last stop
    assert again.metrics["status"] == "completed"


def _wait_for_rows(path: Path, rows: int, process, limit: float = 120) -> None:
    start = time.monotonic()
    while time.monotonic() - start < limit:
        if path.exists() and len(path.read_text().splitlines()) > rows:
            return
        assert process.poll() is None, process.communicate()[0]
        time.sleep(0.1)
    raise AssertionError(f"no {rows} epochs in {limit} s")


@pytest.mark.slow
def test_resume_after_sigkill_continues_history_without_gaps_or_duplicates(tmp_path):
    args = [*LABKIT, "train", "mlp", "--set", "units=[16]", "--epochs", "12", "--batch-size",
            "8", "--optimizer", "sgd", "--learning-rate", "0.05",
            "--schedule", "exponential(rate=0.5, every=4)", "--runs-dir", tmp_path,
            "--name", "killed"]
    process = subprocess.Popen([str(a) for a in args], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    run = runs.Run(tmp_path / "killed")
    _wait_for_rows(run.file(layout.HISTORY), 3, process)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert run.metrics["status"] == "running"  # killed: nothing could mark it
    done = checkpoint.read(run.file(layout.LAST)).state["epoch"]
    assert 2 <= done < 12  # history.csv may hold one epoch more; resume drops it
    training.resume(run.path, echo=lambda _: None)
    rows = history(run)
    assert rows["epoch"].tolist() == list(range(1, 13))
    expected = [0.05 * 0.5 ** ((epoch - 1) / 4) for epoch in rows["epoch"]]
    # the schedule's position is kept
    assert rows[layout.LEARNING_RATE].tolist() == pytest.approx(expected, rel=1e-4)
    steps = run.config["derived"]["steps_per_epoch"]
    assert int(checkpoint.read(run.file(layout.LAST)).optimizer[0]) == 12 * steps
    assert run.metrics["status"] == "completed"


def _default_sigint():
    """A shell running tests in the background ignores SIGINT, and a test worker (pytest-xdist)
    may block SIGINT and SIGTERM; children inherit both. A terminal's Ctrl-C or a `kill` reaches
    a process with the default handler and the signals unblocked, so restore that."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGTERM})


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_saves_and_prints_the_resume_command(tmp_path, sig):
    """Mid-run: exit 130 (SIGINT) or 143 (SIGTERM), and the message names exactly the epochs
    last.keras holds, which is what history and metrics keep and --resume continues from."""
    args = [*LABKIT, "train", "mlp", "--set", "units=[16]", "--epochs", "50", "--batch-size",
            "4", "--runs-dir", tmp_path, "--name", "stopped"]
    process = subprocess.Popen([str(a) for a in args], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, preexec_fn=_default_sigint)
    run = runs.Run(tmp_path / "stopped")
    _wait_for_rows(run.file(layout.HISTORY), 2, process)
    process.send_signal(sig)
    output = process.communicate(timeout=60)[0]
    assert process.returncode == 128 + sig, output
    kept = checkpoint.read(run.file(layout.LAST)).state["epoch"]
    epochs = "epoch 1" if kept == 1 else f"epochs 1–{kept}"  # the row of epoch 2 may be written
    assert output.strip().splitlines()[-2:] == [  # and its checkpoint not yet
        f"Interrupted; {run.path} keeps {epochs} (in last.keras).",
        f"Resume with: labkit train --resume {run.path}"]
    assert "Traceback" not in output and "absl" not in output  # TensorFlow's start-up is quiet
    assert run.metrics["status"] == "interrupted"
    assert len(history(run)) == run.metrics["epochs_completed"] == kept >= 1


@pytest.mark.slow  # two cold starts, stopped while Python and TensorFlow load: ~10 s
@pytest.mark.parametrize("after", [1.0, 3.0])
def test_ctrl_c_while_starting_is_one_quiet_line(tmp_path, after):
    process = subprocess.Popen([*LABKIT, "train", "mlp", "--epochs", "50", "--runs-dir",
                                str(tmp_path)], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, preexec_fn=_default_sigint)
    time.sleep(after)
    process.send_signal(signal.SIGINT)
    output = process.communicate(timeout=60)[0]
    assert process.returncode == 130, output
    lines = output.strip().splitlines()
    if any(line.startswith("Run directory:") for line in lines):  # a fast machine got there
        assert lines[-1].startswith("Resume with: labkit train --resume ")
    else:
        assert lines == ["Stopped."]  # no "Aborted!", no TensorFlow log lines


def test_an_interrupt_between_a_row_and_its_checkpoint_keeps_the_checkpoints_epochs(tmp_path):
    """The history row of an epoch is written just before its checkpoint: an interrupt in
    between must not count that epoch as kept."""
    from labkit.callbacks import RunRecorder

    run = runs.create_run(tmp_path, "r")
    run.file(layout.CONFIG).write_text(json.dumps({"format": layout.FORMAT, "recipe": "mlp"}))
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(2, activation="softmax")])
    model.compile(optimizer=keras.optimizers.SGD(0.5), loss="sparse_categorical_crossentropy")
    recorder = RunRecorder(run, model, "loss")
    recorder.set_model(model)
    for epoch in range(2):
        recorder.on_epoch_begin(epoch)
        recorder.on_epoch_end(epoch, {"loss": 1.0})
    recorder.rows.append({"epoch": 3, "loss": 0.9})  # epoch 3's row, its checkpoint not yet
    assert recorder.interrupted() == 2
    assert run.metrics["epochs_completed"] == 2 and len(history(run)) == 2
    assert training.interrupted_message(run) == (
        f"Interrupted; {run.path} keeps epochs 1–2 (in last.keras).\n"
        f"Resume with: labkit train --resume {run.path}")
    (run.path / layout.LAST).unlink()
    assert training.interrupted_message(run).startswith("Interrupted before the first epoch "
                                                        "ended;")


def test_huge_learning_rate_stops_as_diverged_with_hints(cli, tmp_path):
    result = cli("train", "mlp", "--optimizer", "sgd", "--learning-rate", "1e30", "--epochs",
                 "5", "--runs-dir", tmp_path, "--name", "boom")
    assert result.exit_code == 1
    line = result.output.strip().splitlines()[-1]
    assert line == (
        f"Error: Training diverged; run saved in {tmp_path / 'boom'}. The loss became nan in "
        "epoch 1: the updates grew without bound (exploding gradients). Try: lower "
        "--learning-rate (it was 1e+30); clip gradients with --clipnorm 1.0.")
    run = runs.open_run(tmp_path / "boom")
    assert run.metrics["status"] == "diverged" and run.metrics["diverged"]["epoch"] == 1
    # the start values are hinted at only when they are not already the default
    wide = cli("train", "mlp", "--optimizer", "sgd", "--learning-rate", "1e30", "--epochs", "2",
               "--set", "kernel_initializer=random_normal(stddev=10)", "--runs-dir", tmp_path,
               "--name", "wide")
    assert wide.output.strip().splitlines()[-1].endswith(
        "start from smaller weights: --set kernel_initializer=glorot_uniform, the default (it "
        "was random_normal(stddev=10)).")
    assert len(history(run)) == 1 and not run.file(layout.MODEL).exists()
    with pytest.raises(LabkitError, match="diverged"):
        training.resume(run.path)


def recorder_over(tmp_path, losses, factor):
    """A RunRecorder fed epochs with ``losses``, as Keras would call it."""
    from labkit.callbacks import RunRecorder

    run = runs.create_run(tmp_path, "r")
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(2, activation="softmax")])
    model.compile(optimizer=keras.optimizers.SGD(0.5), loss="sparse_categorical_crossentropy")
    recorder = RunRecorder(run, model, "loss", divergence_factor=factor)
    recorder.set_model(model)
    for epoch, loss in enumerate(losses):
        recorder.on_epoch_begin(epoch)
        recorder.on_epoch_end(epoch, {"loss": loss})
        if recorder.diverged:
            break
    return recorder, model


def test_a_loss_past_the_divergence_factor_is_an_explosion(tmp_path):
    recorder, model = recorder_over(tmp_path, [2.0, 150.0, 250.0, 1.0], factor=100)
    assert recorder.diverged == {"epoch": 3, "loss": 250.0, "learning_rate": 0.5,
                                 "first_loss": 2.0}
    assert model.stop_training and len(recorder.rows) == 3
    config = labkit.config.TrainConfig(recipe="mlp", optimizer="sgd").resolve()
    assert training.divergence_message(config, recorder.diverged) == (
        "The loss grew to 250 in epoch 3, more than 100× the first epoch's 2: the updates grew "
        "without bound (exploding gradients). Try: lower --learning-rate (it was 0.5); clip "
        "gradients with --clipnorm 1.0.")


def test_divergence_factor_zero_stops_only_on_non_finite_losses(tmp_path):
    recorder, _ = recorder_over(tmp_path / "a", [2.0, 250.0, 1e6], factor=0)
    assert recorder.diverged is None and len(recorder.rows) == 3
    recorder, _ = recorder_over(tmp_path / "b", [2.0, float("inf")], factor=0)
    assert recorder.diverged["loss"] == "inf" and recorder.diverged["epoch"] == 2


def test_python_front_door_trains_evaluates_and_reads_back(tmp_path):
    run = labkit.train("mlp", dataset="xor", epochs=2, units=[8], learning_rate=0.01,
                       runs_dir=str(tmp_path), name="nb", echo=lambda _: None)
    assert run.config["hparams"]["units"] == [8] and run.config["learning_rate"] == 0.01
    assert run.history["epoch"].tolist() == [1, 2]
    assert run.metrics["status"] == "completed"
    assert [ax.get_title() for ax in run.plot().axes] == ["loss", "accuracy"]
    report = labkit.evaluate(run)
    assert report["test_accuracy"] == pytest.approx(run.metrics["test_accuracy"])
    assert labkit.load_run(tmp_path / "nb").metrics == run.metrics
    with pytest.raises(LabkitError, match="Recipe 'mlp' has no hyperparameter 'epoch'"):
        labkit.train("mlp", epoch=3, runs_dir=str(tmp_path))


def test_labs_are_reached_from_the_package():
    import labkit as fresh

    assert fresh.labs.get("momentum").name == "momentum"


@pytest.mark.slow
def test_deterministic_runs_give_identical_histories(tmp_path):
    def start(name):
        args = [*LABKIT, "train", "cnn", "--set", "filters=[8]", "--epochs", "2",
                "--deterministic", "--runs-dir", tmp_path, "--name", name]
        return subprocess.Popen([str(a) for a in args], stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True,
                                env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})

    processes = [start("a"), start("b")]
    for process in processes:
        assert process.wait(timeout=300) == 0, process.stderr.read()[-2000:]
    first, second = (pd.read_csv(tmp_path / n / layout.HISTORY).drop(columns="seconds")
                     for n in "ab")  # every column but the wall time
    pd.testing.assert_frame_equal(first, second, check_exact=True)
    assert json.loads((tmp_path / "a" / layout.CONFIG).read_text())["deterministic"] is True


def test_progress_bar_on_a_terminal_one_line_per_epoch_otherwise(monkeypatch):
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    assert training.progress_mode() == 1
    monkeypatch.setattr(sys.stdout, "isatty", lambda: False)
    assert training.progress_mode() == 2


def test_models_that_cannot_learn_are_warned_about_before_training(cli, tmp_path):
    from labkit.training import learning_warnings

    collapsed = labkit.build("vgg16", input_shape=(8, 8, 1), num_classes=10, width=0.125,
                             dense_units=[64, 64])
    found = learning_warnings(collapsed, 10)
    assert found[0].startswith("6 convolution layers (block4_conv1 to block5_conv3) work on 1×1 "
                               "feature maps: pooling has shrunk the 8×8 input away")
    assert found[1].startswith("hidden layers fc1 (8), fc2 (8) are narrower than the 10 classes")
    assert learning_warnings(labkit.build("cnn", input_shape=(8, 8, 1), num_classes=10), 10) == []
    assert learning_warnings(collapsed, 2, "binary")[1:] == []  # two classes: no bottleneck
    result = cli("train", "mlp", "--set", "units=[4]", "--epochs", "1", "--runs-dir", tmp_path)
    assert result.exit_code == 0
    assert "warning: hidden layer fc1 (4) is narrower than the 10 classes" in result.output


def test_max_epochs_variable_cuts_every_phase_and_says_so(cli, tmp_path, monkeypatch):
    """$LABKIT_MAX_EPOCHS (set by the docs' tests) cuts each phase short, with a note; a value
    that is not a whole number >= 1 is an Error line."""
    monkeypatch.setenv("LABKIT_MAX_EPOCHS", "2")
    result = cli("train", "mlp", "--epochs", "10", "--runs-dir", tmp_path, "--name", "cut")
    assert result.exit_code == 0, result.output
    assert "note: LABKIT_MAX_EPOCHS=2 cuts every phase to at most that many epochs" in (
        result.output)
    assert len(pd.read_csv(tmp_path / "cut" / "history.csv")) == 2
    monkeypatch.setenv("LABKIT_MAX_EPOCHS", "0")
    assert error_line(cli("train", "mlp", "--runs-dir", tmp_path)) == (
        "Error: LABKIT_MAX_EPOCHS must be a whole number >= 1 (or unset). Received: '0'")
