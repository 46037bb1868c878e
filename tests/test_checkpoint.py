"""Checkpoints (labkit.checkpoint): a later checkpoint is byte for byte what ``model.save``
writes, it is written on a thread of its own while training goes on, a fault in that thread
stops the run with the epochs on the disk kept, and a kill in the middle of a write leaves a
run that resumes with every epoch once."""

import errno
import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
import zipfile
from pathlib import Path

import h5py
import keras
import numpy as np
import pytest
from helpers import fit, history

from labkit import checkpoint, files, layout, registry, runs, training
from labkit.errors import LabkitError

LABKIT = [str(Path(sys.executable).parent / "labkit")]


def trained(recipe: str, steps: int = 2):
    """A compiled ``recipe`` on 8×8 images after ``steps`` Adam steps, and a function taking
    ``steps`` more."""
    model = registry.build(recipe, input_shape=(8, 8, 1), num_classes=10)
    model.compile(keras.optimizers.Adam(0.01), "sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    rng = np.random.default_rng(0)
    x, y = rng.random((32, 8, 8, 1), dtype="float32"), rng.integers(0, 10, 32)

    def train(n: int = steps) -> None:
        model.fit(x, y, batch_size=16, epochs=n // 2, verbose=0)

    train()
    return model, train


def keras_files(path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as archive:
        return {name: archive.read(name) for name in archive.namelist()
                if not name.startswith("labkit/")}


def same_as_model_save(path, model, tmp_path) -> None:
    """``path``'s Keras files are what ``model.save`` writes now (metadata: the same keys)."""
    model.save(tmp_path / "reference.keras")
    written, reference = keras_files(path), keras_files(tmp_path / "reference.keras")
    assert list(written) == list(reference)
    for name in reference:
        if name == "metadata.json":  # the time it was saved may differ
            assert json.loads(written[name]).keys() == json.loads(reference[name]).keys()
        else:
            assert written[name] == reference[name], name


@pytest.mark.parametrize("recipe", ["mlp", "cnn", pytest.param("resnet", marks=pytest.mark.slow)])
# resnet: batch normalisation (its moving statistics are variables Keras stores too)
def test_a_later_checkpoint_is_byte_for_byte_what_model_save_writes(tmp_path, recipe):
    model, train = trained(recipe)
    writer = checkpoint.Writer()
    writer.save(model, tmp_path / "last.keras", {"epoch": 1}, optimizer=model.optimizer)
    assert writer.layout is not None  # later checkpoints are placed, not walked
    assert writer.state == {"epoch": 1}  # small (< 4 MB): written at once
    train()
    writer.save(model, tmp_path / "last.keras", {"epoch": 2}, optimizer=model.optimizer)
    writer.wait()
    writer.close()
    same_as_model_save(tmp_path / "last.keras", model, tmp_path)
    loaded = keras.models.load_model(tmp_path / "last.keras")
    for saved, now in zip(loaded.get_weights(), model.get_weights(), strict=True):
        np.testing.assert_array_equal(saved, now)
    saved = checkpoint.read(tmp_path / "last.keras")
    assert saved.state == {"epoch": 2}
    assert int(saved.optimizer[0]) == int(model.optimizer.iterations.numpy())
    for value, variable in zip(saved.optimizer, model.optimizer.variables, strict=True):
        np.testing.assert_array_equal(value, variable.numpy())  # from Keras's weights file
    with zipfile.ZipFile(tmp_path / "last.keras") as archive:  # held once, not twice
        assert "labkit/optimizer.npz" not in archive.namelist()


def test_a_checkpoint_whose_weights_lack_the_optimizer_is_named_damaged(tmp_path):
    model, _ = trained("mlp")
    writer = checkpoint.Writer()
    writer.save(model, tmp_path / "last.keras", {"epoch": 1}, optimizer=model.optimizer)
    writer.close()
    with zipfile.ZipFile(tmp_path / "last.keras") as archive:
        entries = {name: archive.read(name) for name in archive.namelist()}
    where = json.loads(entries["labkit/optimizer.json"])
    entries["labkit/optimizer.json"] = json.dumps({**where, "count": where["count"] + 1}).encode()
    with zipfile.ZipFile(tmp_path / "cut.keras", "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    with pytest.raises(LabkitError, match=r"cut\.keras is damaged \(its weights file lacks "):
        checkpoint.read(tmp_path / "cut.keras")


def test_a_phase_s_own_optimizer_is_stored_beside_the_model(tmp_path):
    """A phase that trains a part of the model (a head) has an optimizer the model's weights
    file does not hold: its variables go to labkit/optimizer.npz."""
    model, _ = trained("mlp")
    head = keras.optimizers.SGD(0.1, momentum=0.9)
    head.build(model.trainable_variables[-2:])
    head.variables[-1].assign(np.full(head.variables[-1].shape, 0.5, dtype="float32"))
    writer = checkpoint.Writer()
    writer.save(model, tmp_path / "last.keras", {"epoch": 1}, optimizer=head)
    writer.close()
    saved = checkpoint.read(tmp_path / "last.keras")
    assert len(saved.optimizer) == len(head.variables)
    for value, variable in zip(saved.optimizer, head.variables, strict=True):
        np.testing.assert_array_equal(value, variable.numpy())
    with zipfile.ZipFile(tmp_path / "last.keras") as archive:
        assert "labkit/optimizer.npz" in archive.namelist()


def test_a_new_learning_rate_or_optimizer_is_saved_by_keras_again(tmp_path):
    model, train = trained("mlp")
    writer = checkpoint.Writer()
    writer.save(model, tmp_path / "a.keras", {"epoch": 1}, optimizer=model.optimizer)
    first = writer.layout
    model.optimizer.learning_rate.assign(0.001)  # reduce-on-plateau: config.json changes
    writer.save(model, tmp_path / "a.keras", {"epoch": 2}, optimizer=model.optimizer)
    assert writer.layout is not first
    writer.wait()
    same_as_model_save(tmp_path / "a.keras", model, tmp_path)
    model.compile(keras.optimizers.SGD(0.1), "sparse_categorical_crossentropy")  # a new phase
    train()
    writer.save(model, tmp_path / "a.keras", {"epoch": 3}, optimizer=model.optimizer)
    writer.wait()
    writer.close()
    same_as_model_save(tmp_path / "a.keras", model, tmp_path)


def slow_flush(monkeypatch, prefix: str, seconds: float, fault: int | None = None,
               gate: threading.Semaphore | None = None):
    """Flushing a temporary file named ``prefix…`` takes ``seconds``, or lasts until the test
    releases ``gate`` once (then fails with ``fault``); an event is set while one is in
    progress."""
    real, busy = files.fsync, threading.Event()

    def fsync(path):
        if Path(path).name.startswith(prefix):
            busy.set()
            if gate is None:
                time.sleep(seconds)
            else:
                assert gate.acquire(timeout=60), "the test never let the flush end"
            busy.clear()
            if fault is not None:
                raise OSError(fault, os.strerror(fault))
        return real(path)

    monkeypatch.setattr(files, "fsync", fsync)
    return busy


def test_a_checkpoint_is_written_while_the_caller_goes_on(tmp_path, monkeypatch):
    model, train = trained("mlp")
    writer = checkpoint.Writer(background_bytes=0)  # in the background, however small
    gate = threading.Semaphore(0)  # a flush ends when the test lets it: no clock involved
    busy = slow_flush(monkeypatch, ".last.", 0, gate=gate)
    last = tmp_path / "last.keras"
    writer.save(model, last, {"epoch": 1}, optimizer=model.optimizer)
    assert busy.wait(30)  # save returned while its flush is still held in the writer
    assert not last.exists() and writer.state is None
    train()  # meanwhile
    second = threading.Thread(target=writer.save, args=(model, last, {"epoch": 2}),
                              kwargs={"optimizer": model.optimizer})
    second.start()
    second.join(0.5)
    assert second.is_alive()  # the next save waits for the write before it...
    gate.release()
    second.join(60)
    assert not second.is_alive() and checkpoint.read(last).state == {"epoch": 1}  # ...whole
    gate.release()
    writer.wait()
    assert writer.state == {"epoch": 2} == checkpoint.read(last).state
    writer.close()


def test_a_fault_in_the_writer_is_raised_once_and_the_last_file_stays_whole(tmp_path,
                                                                           monkeypatch):
    model, train = trained("mlp")
    writer = checkpoint.Writer(background_bytes=0)
    writer.save(model, tmp_path / "last.keras", {"epoch": 1}, optimizer=model.optimizer)
    writer.wait()
    slow_flush(monkeypatch, ".last.", 0.2, fault=errno.ENOSPC)
    train()
    writer.save(model, tmp_path / "last.keras", {"epoch": 2}, optimizer=model.optimizer)
    with pytest.raises(files.FileFault, match="No space left on the device holding"):
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            writer.check()  # never waits: raises once the write has failed
            time.sleep(0.02)
    writer.check()
    writer.wait()  # raised once
    assert writer.state == {"epoch": 1} == checkpoint.read(tmp_path / "last.keras").state
    assert [p.name for p in tmp_path.iterdir()] == ["last.keras"]
    writer.close()


def test_a_fault_in_the_writer_stops_training_at_the_next_epoch(tmp_path, monkeypatch):
    slow_flush(monkeypatch, ".last.", 0.0, fault=errno.EIO)
    with pytest.raises(training.StoppedByFault, match="keeps 0 finished epochs") as stopped:
        fit(tmp_path, epochs=4)
    run = stopped.value.run
    assert run.metrics["status"] == "interrupted" and run.metrics["epochs_completed"] == 0
    assert run.metrics["reason"].startswith("An input/output error on the device holding")
    assert not run.file(layout.LAST).exists() and history(run).empty


def test_resume_removes_what_a_killed_write_left(tmp_path):
    run = fit(tmp_path)
    (run.path / ".last.0123abcd.keras").write_bytes(b"half a checkpoint")
    (run.path / ".history.89abcdef.csv").write_text("epoch\n1\n")
    assert sorted(files.remove_leftovers(run.path)) == [".history.89abcdef.csv",
                                                        ".last.0123abcd.keras"]
    assert not any(p.name.startswith(".") for p in run.path.iterdir())


@pytest.mark.slow  # a subprocess killed, then resumed
def test_kill_9_in_the_middle_of_a_checkpoint_write_resumes_every_epoch_once(tmp_path):
    """A model whose checkpoint (~25 MB) takes a while to write; SIGKILL as soon as the
    temporary file of one after the first exists (the epoch's files, history.csv first, are
    renamed together once all are written)."""
    args = [*LABKIT, "train", "mlp", "--set", "units=[1024, 1024]", "--epochs", "12",
            "--batch-size", "256", "--runs-dir", tmp_path, "--name", "killed"]
    process = subprocess.Popen([str(a) for a in args], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    folder, start = tmp_path / "killed", time.monotonic()
    while not ((folder / "last.keras").exists() and
               any(p.name.startswith(".last.") for p in folder.iterdir())):
        assert process.poll() is None, process.communicate()[0]
        assert time.monotonic() - start < 120, "no checkpoint write seen"
        time.sleep(0.002)
    process.send_signal(signal.SIGKILL)
    process.wait()
    run = runs.Run(folder)
    assert run.metrics.get("status", "running") == "running"
    kept = checkpoint.saved_epochs(run.file(layout.LAST))
    assert kept >= 1 and kept <= len(history(run)) <= kept + 2  # rows past it are dropped
    training.resume(folder, echo=lambda _: None)
    assert history(run)["epoch"].tolist() == list(range(1, 13))
    assert run.metrics["status"] == "completed"
    assert not any(p.name.startswith(".") for p in folder.iterdir())
    assert checkpoint.read(run.file(layout.LAST)).state["epoch"] == 12


class Noted(keras.layers.Layer):
    """A layer that stores a value of its own, not a variable's (``noted``)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.noted = 0

    def call(self, x):
        return x

    def save_own_variables(self, store):
        store["0"] = np.array([self.noted], dtype="int64")

    def load_own_variables(self, store):
        self.noted = int(store["0"][0])


def test_a_stored_value_that_is_no_variable_is_saved_by_keras_every_time(tmp_path, monkeypatch):
    inputs = keras.Input((4,))
    noted = Noted()
    model = keras.Model(inputs, keras.layers.Dense(2)(noted(inputs)))
    model.compile("adam", "mse")
    walks = []
    original = checkpoint.find_layout
    monkeypatch.setattr(checkpoint, "find_layout",
                        lambda *a: walks.append(1) or original(*a))
    writer = checkpoint.Writer()
    for epoch in (1, 2, 3):
        noted.noted = 10 * epoch
        writer.save(model, tmp_path / "last.keras", {"epoch": epoch}, optimizer=model.optimizer)
        assert writer.layout is None  # its bytes cannot be placed: Keras writes each one
        with zipfile.ZipFile(tmp_path / "last.keras") as archive:
            with h5py.File(io.BytesIO(archive.read("model.weights.h5"))) as h5:
                assert h5[f"layers/{noted.name}/vars/0"][0] == 10 * epoch
    assert walks == [1]  # looked for once, not every epoch
    writer.close()
