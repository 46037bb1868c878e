"""Training controls (issue 4): each option is checked where it lands — the compiled optimizer,
the schedule's values, the fit arguments, the files of the run — not by trusting the flags."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import pytest

from labkit import checkpoint, data, optim, runs, training
from labkit.config import TrainConfig
from labkit.errors import LabkitError

LABKIT = [str(Path(sys.executable).parent / "labkit")]  # the installed command


def config(tmp_path, **overrides) -> TrainConfig:
    """A small, fast digits mlp config."""
    values = {"recipe": "mlp", "hparams": {"units": [16]}, "epochs": 2,
              "runs_dir": str(tmp_path), "name": "run", **overrides}
    return TrainConfig(**values)


def fit(tmp_path, **overrides) -> runs.Run:
    return training.train(config(tmp_path, **overrides), echo=lambda _: None)


def history(run: runs.Run) -> pd.DataFrame:
    return pd.read_csv(run.file(runs.HISTORY))


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


# --- optimizers -------------------------------------------------------------------------------

@pytest.mark.parametrize(("name", "params", "expected"), [
    ("sgd", {}, {"momentum": 0.0, "nesterov": False}),
    ("momentum", {"momentum": 0.5}, {"momentum": 0.5, "nesterov": False}),
    ("momentum", {}, {"momentum": 0.9, "nesterov": False}),
    ("nesterov", {"momentum": 0.8}, {"momentum": 0.8, "nesterov": True}),
    ("rmsprop", {"rho": 0.8, "momentum": 0.1, "epsilon": 1e-5},
     {"rho": 0.8, "momentum": 0.1, "epsilon": 1e-5}),
    ("adam", {"beta_1": 0.8, "beta_2": 0.99, "epsilon": 1e-6},
     {"beta_1": 0.8, "beta_2": 0.99, "epsilon": 1e-6}),
    ("adam", {"clipnorm": 1.5}, {"clipnorm": 1.5, "clipvalue": None}),
    ("sgd", {"clipvalue": 0.5}, {"clipvalue": 0.5, "clipnorm": None}),
])
def test_optimizer_options_reach_the_compiled_optimizer(name, params, expected):
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, activation="softmax")])
    cfg = TrainConfig(recipe="mlp", optimizer=name, learning_rate=0.05, **params).resolved()
    training.compile_model(model, cfg)
    got = model.optimizer.get_config()
    assert type(model.optimizer).__name__ == optim.OPTIMIZERS[name].keras_class
    assert got["learning_rate"] == pytest.approx(0.05)
    for key, value in expected.items():
        assert got[key] == (pytest.approx(value) if value is not None else None), key


def test_trained_run_saves_its_optimizer_with_hyperparameters(tmp_path):
    run = fit(tmp_path, epochs=1, optimizer="nesterov", learning_rate=0.02, momentum=0.7,
              clipnorm=2.0)
    saved = keras.models.load_model(run.file(runs.MODEL)).optimizer.get_config()
    assert saved["nesterov"] and saved["momentum"] == pytest.approx(0.7)
    assert saved["clipnorm"] == pytest.approx(2.0)
    assert saved["learning_rate"] == pytest.approx(0.02)


# --- schedules --------------------------------------------------------------------------------

# (schedule, ε at epochs 0, 1, 2, 3, 4) computed by hand for ε₀ = 0.1.
SCHEDULE_VALUES = [
    ("constant", [0.1] * 5),
    ("exponential(rate=0.5, every=2)", [0.1, 0.1 * 0.5 ** 0.5, 0.05, 0.1 * 0.5 ** 1.5, 0.025]),
    ("inverse-time(tau=2)", [0.1, 0.1 / 1.5, 0.05, 0.1 / 2.5, 0.1 / 3]),
    ("step(every=2, factor=0.1)", [0.1, 0.1, 0.01, 0.01, 0.001]),
    ("piecewise(boundaries=[1, 3], factors=[1, 0.5, 0.1])", [0.1, 0.1, 0.05, 0.05, 0.01]),
    ("cosine(epochs=4)", [0.1, 0.1 * (1 + np.cos(np.pi / 4)) / 2, 0.05,
                          0.1 * (1 + np.cos(3 * np.pi / 4)) / 2, 0.0]),
]


@pytest.mark.parametrize(("text", "values"), SCHEDULE_VALUES)
def test_schedule_values_at_given_steps(text, values):
    schedule = optim.resolve_schedule(text)
    steps_per_epoch = 10
    opt = optim.make("sgd", 0.1, schedule=schedule, steps_per_epoch=steps_per_epoch)
    for epoch, expected in enumerate(values):
        opt.iterations.assign(epoch * steps_per_epoch)
        assert float(opt.learning_rate) == pytest.approx(expected, rel=1e-5, abs=1e-9), epoch
        assert optim.expected_learning_rate(0.1, schedule, epoch) == pytest.approx(expected)


def test_inverse_time_meets_the_robbins_monro_conditions():
    schedule = optim.resolve_schedule("inverse-time(tau=1)")
    epochs = np.arange(0, 10**6)
    values = np.array([optim.expected_learning_rate(1.0, schedule, k) for k in epochs[::1000]])
    # Σε diverges like log k; Σε² converges (to π²/6 for τ = 1, ε₀ = 1)
    assert values.sum() * 1000 > 10 and (1 / (1 + epochs) ** 2).sum() < 1.65


def test_history_has_the_learning_rate_of_each_epoch(tmp_path):
    run = fit(tmp_path, epochs=3, optimizer="sgd", learning_rate=0.1,
              schedule="exponential(rate=0.5, every=1)")
    assert history(run)["lr"].tolist() == pytest.approx([0.1, 0.05, 0.025], rel=1e-5)


def test_plateau_schedule_lowers_the_rate_when_the_metric_stalls(tmp_path):
    run = fit(tmp_path, epochs=4, optimizer="sgd", learning_rate=0.1,
              schedule="plateau(factor=0.5, patience=0, min_delta=10)")
    assert history(run)["lr"].tolist() == pytest.approx([0.1, 0.1, 0.05, 0.025], rel=1e-5)


# --- batch size -------------------------------------------------------------------------------

@pytest.mark.parametrize(("batch_size", "steps"), [("full", 1), (1, 200), (64, 4)])
def test_batch_size_from_one_example_to_the_whole_set(tmp_path, batch_size, steps):
    run = fit(tmp_path, dataset="circle", epochs=2, batch_size=batch_size)
    derived = run.config["derived"]
    assert derived["train_examples"] == 200 and derived["steps_per_epoch"] == steps
    state = checkpoint.read(run.file(checkpoint.LAST))
    assert int(state.optimizer[0]) == 2 * steps  # the optimizer took exactly that many steps


def test_training_batches_are_reshuffled_every_epoch(tmp_path):
    cfg = config(tmp_path).resolved()
    loaded = data.load("digits")
    pipeline = training.fit_kwargs(loaded, cfg, training.derive(cfg, loaded))["x"]
    first, second = ([y.numpy() for _, y in pipeline] for _ in range(2))
    assert not all(np.array_equal(a, b) for a, b in zip(first, second, strict=True))
    np.testing.assert_array_equal(np.sort(np.concatenate(first)), np.sort(loaded.train[1]))


# --- early stopping ---------------------------------------------------------------------------

def test_early_stopping_stops_on_a_plateau_and_restores_the_best_weights(tmp_path):
    run = fit(tmp_path, epochs=20, optimizer="sgd", learning_rate=0.3,
              early_stopping={"patience": 2, "min_delta": 5.0})
    metrics, rows = run.metrics, history(run)
    # epoch 1 sets the best; no later gain reaches min_delta (a plateau at that resolution)
    assert metrics["stopped_epoch"] == 3 and len(rows) == 3
    assert metrics["restored_epoch"] == 1
    loaded = data.load("digits")
    model = keras.models.load_model(run.file(runs.MODEL))
    val_loss = model.evaluate(data.model_input(loaded.val[0], loaded.spec), loaded.val[1],
                              verbose=0, return_dict=True)["loss"]
    assert val_loss == pytest.approx(rows["val_loss"][0], rel=1e-4)  # epoch 1's weights
    assert val_loss > rows["val_loss"][2] + 0.05  # not the last epoch's


def test_best_checkpoint_follows_the_monitor(tmp_path):
    run = fit(tmp_path, epochs=3, monitor="val_accuracy")
    rows = history(run)
    assert run.metrics["best_epoch"] == int(rows.loc[rows["val_accuracy"].idxmax(), "epoch"])
    assert checkpoint.read(run.file(checkpoint.BEST)).state["epoch"] == run.metrics["best_epoch"]


# --- augmentation -----------------------------------------------------------------------------

def test_augmentation_changes_training_inputs_only(tmp_path):
    plain = fit(tmp_path, epochs=1, name="plain")
    noisy = fit(tmp_path, epochs=1, name="noisy", augment="noise=1")
    assert history(noisy)["loss"][0] > history(plain)["loss"][0] + 0.2  # training saw noise
    loaded = data.load("digits")
    model = keras.models.load_model(noisy.file(runs.MODEL))
    clean = model.evaluate(data.model_input(loaded.val[0], loaded.spec), loaded.val[1],
                           verbose=0, return_dict=True)
    assert clean["loss"] == pytest.approx(history(noisy)["val_loss"][0], rel=1e-4)
    assert not any("Noise" in type(layer).__name__ for layer in model.layers)


def test_image_augmentation_layers_in_the_training_pipeline(tmp_path):
    cfg = config(tmp_path, recipe="cnn", hparams={"filters": [4]},
                 augment="flip,rotation=0.2,zoom=0.1,translation=0.1,contrast=0.3").resolved()
    loaded = data.load("digits")
    kwargs = training.fit_kwargs(loaded, cfg, training.derive(cfg, loaded))
    x, y = next(iter(kwargs["x"]))
    assert x.shape[1:] == (8, 8, 1) and len(y) == 32
    assert kwargs["validation_data"][0] is not None
    np.testing.assert_array_equal(kwargs["validation_data"][1], loaded.val[1])
    x_val = data.model_input(loaded.val[0], loaded.spec)
    np.testing.assert_array_equal(kwargs["validation_data"][0], x_val)


# --- class weights ----------------------------------------------------------------------------

def test_balanced_class_weights_follow_sklearns_formula_and_reach_fit(tmp_path):
    cfg = config(tmp_path, class_weight="balanced").resolved()
    loaded = data.load("digits")
    derived = training.derive(cfg, loaded)
    labels = loaded.train[1]
    counts = np.bincount(labels)
    for cls, weight in derived["class_weight"].items():
        assert weight == pytest.approx(len(labels) / (10 * counts[cls]))
    assert training.fit_kwargs(loaded, cfg, derived)["class_weight"] == derived["class_weight"]


def test_class_weights_change_the_training_loss(tmp_path):
    plain = fit(tmp_path, epochs=1, name="plain", learning_rate=1e-9)
    heavy = fit(tmp_path, epochs=1, name="heavy", learning_rate=1e-9,
                class_weight={0: 50.0})
    ratio = history(heavy)["loss"][0] / history(plain)["loss"][0]
    assert ratio > 3  # class 0's examples count 50 times
    assert history(heavy)["val_loss"][0] == pytest.approx(history(plain)["val_loss"][0],
                                                          rel=1e-3)  # validation unweighted


# --- config files -----------------------------------------------------------------------------

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
    json_file = tmp_path / "printed.json"
    json_file.write_text(first.output)
    second = cli("train", "--config", json_file, "--print-config")
    assert json.loads(second.output) == printed
    assert not (tmp_path / "runs").exists()  # --print-config trains nothing


def test_run_config_json_reruns_with_every_option(tmp_path):
    run = fit(tmp_path, epochs=1, optimizer="adam", beta_1=0.8, class_weight={3: 2.0},
              schedule="cosine", early_stopping="on", tensorboard=True)
    again = TrainConfig.from_dict(run.config).validate().resolved()
    stored = {k: v for k, v in run.config.items()
              if k not in ("run", "created", "versions", "derived")}
    assert again.to_dict() == {**stored, "class_weight": {3: 2.0}}  # JSON keys are strings
    assert again.class_weight == {3: 2.0} and again.schedule == {"name": "cosine", "epochs": 1,
                                                                   "alpha": 0.0}
    events = list((run.path / runs.TENSORBOARD).rglob("events.out.tfevents*"))
    assert {p.parent.name for p in events} >= {"train", "validation"}


@pytest.mark.parametrize(("args", "message"), [
    (["--optimizer", "adagrad"], "Invalid value for '--optimizer'"),
    (["--learning-rate", "-1"], "--learning-rate must be a number > 0"),
    (["--momentum", "1.5", "--optimizer", "momentum"], "--momentum must be in [0, 1)"),
    (["--rho", "0.5"], "--rho applies to --optimizer rmsprop, not adam"),
    (["--beta-1", "0.5", "--optimizer", "sgd"], "--beta-1 applies to --optimizer adam, not sgd"),
    (["--epsilon", "0"], "--epsilon must be a number > 0"),
    (["--clipnorm", "-2"], "--clipnorm must be a number > 0"),
    (["--clipvalue", "0"], "--clipvalue must be a number > 0"),
    (["--schedule", "linear"], "--schedule must be one of constant, exponential"),
    (["--schedule", "exponential(rate=2)"], "--schedule exponential: rate must be in (0, 1]"),
    (["--schedule", "step(every=0)"], "--schedule step: every must be > 0"),
    (["--schedule", "cosine(warmup=3)"], "--schedule cosine has no argument warmup"),
    (["--schedule", "piecewise(boundaries=[5], factors=[1])"], "factors must be a list of 2"),
    (["--schedule", "plateau(patience=-1)"], "patience must be an integer >= 0"),
    (["--schedule", "inverse-time(tau=)"], "--schedule: arguments must be key=value"),
    (["--batch-size", "0"], '--batch-size must be an integer >= 1 or "full"'),
    (["--batch-size", "all"], '--batch-size must be an integer >= 1 or "full"'),
    (["--early-stopping", "patience=-1"], "--early-stopping patience must be an integer >= 0"),
    (["--early-stopping", "wait=3"], "--early-stopping has no wait"),
    (["--early-stopping", "restore_best=maybe"], "restore_best must be true or false"),
    (["--augment", "blur"], "--augment has no 'blur'"),
    (["--augment", "rotation=2"], "--augment rotation: the amount is the fraction"),
    (["--augment", "flip=diagonal"], "--augment flip: the amount is the horizontal"),
    (["--augment", "flip", "--dataset", "circle"], "--augment flip needs image data"),
    (["--class-weight", "0=1,12=3"], "--class-weight: class 12 is not one of 0..9"),
    (["--class-weight", "0=-1"], "--class-weight: weight of class 0 must be > 0"),
    (["--class-weight", "heavy"], "--class-weight is balanced or CLASS=WEIGHT pairs"),
    (["--monitor", "val_loss", "--validation-split", "0"], "--monitor val_loss needs validation"),
    (["--monitor", "f1"], "Invalid value for '--monitor'"),
    (["--resume", "nowhere"], "Run directory 'nowhere' does not exist"),
])
def test_bad_training_options_are_one_error_line_before_training(cli, tmp_path, args, message):
    result = cli("train", "mlp", "--runs-dir", tmp_path / "runs", *args) \
        if args[0] != "--resume" else cli("train", *args)
    assert result.exit_code in (1, 2), result.output
    assert message in result.output, result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "runs").exists()


def test_resume_takes_no_other_options(cli, tmp_path):
    result = cli("train", "--resume", tmp_path, "--epochs", "3")
    assert result.exit_code == 1 and "drop --epochs" in result.output


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
    saved = checkpoint.read(run.file(checkpoint.LAST)).state
    assert saved["controls"]["EarlyStopping"]["wait"] == 1
    training.resume(run.path, echo=lambda _: None)
    rows = history(run)
    # restarted counters would stop at epoch 5 (2 + 3); restored ones stop at epoch 4
    assert rows["epoch"].tolist() == [1, 2, 3, 4] and run.metrics["stopped_epoch"] == 4
    assert rows["lr"].tolist() == pytest.approx([0.3, 0.3, 0.15, 0.075])
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
    assert (run.path / runs.MODEL).exists() and "test_accuracy" in run.metrics


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
    _wait_for_rows(run.file(runs.HISTORY), 3, process)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert run.metrics["status"] == "running"  # killed: nothing could mark it
    done = checkpoint.read(run.file(checkpoint.LAST)).state["epoch"]
    assert 2 <= done < 12  # history.csv may hold one epoch more; resume drops it
    training.resume(run.path, echo=lambda _: None)
    rows = history(run)
    assert rows["epoch"].tolist() == list(range(1, 13))
    expected = [0.05 * 0.5 ** ((epoch - 1) / 4) for epoch in rows["epoch"]]
    assert rows["lr"].tolist() == pytest.approx(expected, rel=1e-4)  # schedule position kept
    steps = run.config["derived"]["steps_per_epoch"]
    assert int(checkpoint.read(run.file(checkpoint.LAST)).optimizer[0]) == 12 * steps
    assert run.metrics["status"] == "completed"


def _default_sigint():
    """A shell running tests in the background ignores SIGINT, and children inherit that;
    a terminal's Ctrl-C reaches a process with the default handler, so restore it."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_saves_and_prints_the_resume_command(tmp_path, sig):
    args = [*LABKIT, "train", "mlp", "--set", "units=[16]", "--epochs", "50", "--batch-size",
            "4", "--runs-dir", tmp_path, "--name", "stopped"]
    process = subprocess.Popen([str(a) for a in args], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, preexec_fn=_default_sigint)
    run = runs.Run(tmp_path / "stopped")
    _wait_for_rows(run.file(runs.HISTORY), 2, process)
    process.send_signal(sig)
    output = process.communicate(timeout=60)[0]
    assert process.returncode == 130, output
    assert f"Resume with: labkit train --resume {run.path}" in output
    assert "Traceback" not in output
    assert run.metrics["status"] == "interrupted"
    assert len(history(run)) == run.metrics["epochs_completed"] >= 2


def test_huge_learning_rate_stops_as_diverged_with_hints(cli, tmp_path):
    result = cli("train", "mlp", "--optimizer", "sgd", "--learning-rate", "1e30", "--epochs",
                 "5", "--runs-dir", tmp_path, "--name", "boom")
    assert result.exit_code == 1
    line = result.output.strip().splitlines()[-1]
    assert line.startswith("Error: Training diverged") and "--clipnorm" in line
    assert "lower --learning-rate" in line
    run = runs.open_run(tmp_path / "boom")
    assert run.metrics["status"] == "diverged" and run.metrics["diverged"]["epoch"] == 1
    assert len(history(run)) == 1 and not run.file(runs.MODEL).exists()
    with pytest.raises(LabkitError, match="diverged"):
        training.resume(run.path)


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
    first, second = (pd.read_csv(tmp_path / n / runs.HISTORY) for n in "ab")
    pd.testing.assert_frame_equal(first, second, check_exact=True)
    assert json.loads((tmp_path / "a" / runs.CONFIG).read_text())["deterministic"] is True


def test_progress_bar_on_a_terminal_one_line_per_epoch_otherwise(monkeypatch):
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    assert training.progress_mode() == 1
    monkeypatch.setattr(sys.stdout, "isatty", lambda: False)
    assert training.progress_mode() == 2
