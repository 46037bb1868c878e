"""labkit playground: exact mode against a numpy transcription of the Playground's nn.ts, the
session's settings and exports, and the server's API."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

import numpy as np
import pytest

from labkit.errors import LabkitError
from labkit.playground import session as pg
from tests.playground_reference import Network


def reference_for(run: pg.Session, regularization=None, rate=0.0) -> Network:
    """The reference network with the session's start weights and settings."""
    kernels = [layer.get_weights() for layer in run.model.layers if layer.weights]
    chosen = run.settings
    return Network([k for k, _ in kernels], [b for _, b in kernels], chosen.activation,
                   "linear" if chosen.task == "regression" else "tanh",
                   regularization, rate)


def targets(run: pg.Session, part) -> np.ndarray:
    x, y = part
    return y[:, 0].astype(float) if run.settings.task == "regression" else 2.0 * y - 1


def compare(run: pg.Session, net: Network, epochs: int, atol: float = 2e-5) -> None:
    chosen = run.settings
    x, _ = run.train
    for _ in range(epochs):
        run.train_epoch()
        net.one_step(x.astype(float), targets(run, run.train), chosen.features,
                     chosen.batch_size, chosen.learning_rate)
    kernels = [layer.get_weights() for layer in run.model.layers if layer.weights]
    for (w, b), w_ref, b_ref in zip(kernels, net.w, net.b, strict=True):
        np.testing.assert_allclose(w, w_ref, atol=atol)
        np.testing.assert_allclose(b, b_ref, atol=atol)
    for name, part in (("train", run.train), ("test", run.test)):
        expected = net.loss(part[0].astype(float), targets(run, part), chosen.features)
        assert run.history[-1][f"{name}_loss"] == pytest.approx(expected, rel=1e-4, abs=1e-6)


def test_exact_mode_matches_the_playground_update_rule_with_leftover_points():
    # 250 training points in batches of 7: 5 left over each epoch join the next epoch's first
    # update, as nn.ts accumulates them.
    run = pg.Session(pg.settings({"dataset": "spiral", "noise": 10, "batch_size": 7,
                                  "features": ["x1", "x2", "sin(x1)", "sin(x2)"],
                                  "hidden": [5, 3], "learning_rate": 0.1}))
    compare(run, reference_for(run), epochs=3)
    assert len(run.batches()[0]) == 7 + 250 % 7  # the 5 carried points, then 7


def test_exact_mode_regression_relu_matches():
    run = pg.Session(pg.settings({"dataset": "multi-gauss", "batch_size": 10, "hidden": [6],
                                  "activation": "relu", "features": ["x1", "x2", "x1*x2"],
                                  "learning_rate": 0.03}))
    compare(run, reference_for(run), epochs=2)


def test_exact_l1_kills_crossing_weights_and_keeps_them_dead():
    run = pg.Session(pg.settings({"dataset": "circle", "hidden": [8, 4], "learning_rate": 0.3,
                                  "regularization": "l1", "regularization_rate": 0.03}))
    net = reference_for(run, "l1", 0.03)
    compare(run, net, epochs=3)
    dead = sum(int(d.sum()) for d in net.dead)
    assert dead >= 5  # the rule was exercised, not just the plain step
    kernels = [layer.get_weights()[0] for layer in run.model.layers if layer.weights]
    for w, was_dead in zip(kernels, net.dead, strict=True):
        assert (w[was_dead] == 0).all()
    alive = [a for a in run.model.optimizer.alive if a is not None]
    assert sum(int((np.asarray(a) == 0).sum()) for a in alive) == dead
    compare(run, net, epochs=2)  # dead weights stay exactly 0 while the rest trains on
    kernels = [layer.get_weights()[0] for layer in run.model.layers if layer.weights]
    assert all((w[d] == 0).all() for w, d in zip(kernels, net.dead, strict=True))


def test_exact_l2_is_the_playgrounds_half_w_squared():
    chosen = {"dataset": "xor", "learning_rate": 0.1, "regularization": "l2",
              "regularization_rate": 0.3, "features": ["x1", "x2", "x1*x2"]}
    run = pg.Session(pg.settings(chosen))
    assert run.model.get_layer("fc1").kernel_regularizer.l2 == pytest.approx(0.15)
    compare(run, reference_for(run, "l2", 0.3), epochs=3)
    # Keras's own l2 at the Playground's rate would be twice the pull: far off the reference.
    run = pg.Session(pg.settings(chosen))
    net = reference_for(run, "l2", 0.6)
    with pytest.raises(AssertionError):
        compare(run, net, epochs=3)


@pytest.mark.slow
def test_exact_mode_matches_the_reference_on_the_jax_backend_too():
    """The four reference comparisons above, rerun under KERAS_BACKEND=jax (one call per
    batch there: no tf.function)."""
    pytest.importorskip("jax")
    import os
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:xdist", "-p", "no:cacheprovider",
         __file__, "-k", "exact_mode_matches_the_playground or relu_matches or exact_l1 "
                         "or exact_l2"],
        capture_output=True, text=True, timeout=600, check=False,
        env={**os.environ, "KERAS_BACKEND": "jax"})
    assert done.returncode == 0, done.stdout[-3000:]
    assert "4 passed" in done.stdout


def test_exact_start_values_are_the_playgrounds():
    run = pg.Session(pg.settings({"hidden": [8, 8, 8]}))
    kernels = [w for layer in run.model.layers for w in layer.get_weights()[:1]]
    biases = [layer.get_weights()[1] for layer in run.model.layers if layer.weights]
    weights = np.concatenate([k.ravel() for k in kernels])
    assert weights.min() >= -0.5 and weights.max() <= 0.5 and weights.std() > 0.25
    assert all(np.allclose(b, 0.1) for b in biases)


def test_settings_changes_leave_the_terminal_without_retracing_warnings():
    """Each settings change builds a new model and traces its compiled steps once, as it must;
    TensorFlow's "triggered tf.function retracing" warning about that stays out of the way."""
    import logging

    seen = []

    class Seen(logging.Handler):
        def emit(self, record):
            seen.append(record.getMessage())

    handler = Seen()
    logging.getLogger("tensorflow").addHandler(handler)
    try:
        for width in (1, 2, 3, 1, 2, 3, 1):
            pg.Session(pg.settings({"hidden": [2, width], "batch_size": 30})).train_epoch()
    finally:
        logging.getLogger("tensorflow").removeHandler(handler)
    assert not [m for m in seen if "retracing" in m]


def test_keras_mode_reshuffles_and_uses_the_tasks_head():
    run = pg.Session(pg.settings({"exact": False, "batch_size": 30}))
    assert run.model.output_shape == (None, 2)  # softmax over orange, blue
    first, second = run.batches(), run.batches()
    assert [len(g) for g in first] == [30] * 8 + [10]  # a smaller last batch, Keras's way
    assert not np.array_equal(np.concatenate(first), np.concatenate(second))


@pytest.mark.parametrize(("raw", "message"), [
    ({"dataset": "moons"}, "dataset must be one of circle"),
    ({"noise": 60}, "noise must be an integer in [0, 50]"),
    ({"batch_size": 0}, "batch_size must be an integer in [1, 30]"),
    ({"hidden": [4, 9]}, "hidden must list up to 6 layers of 1 to 8 neurons"),
    ({"hidden": [1] * 7}, "hidden must list up to 6 layers"),
    ({"features": []}, "features must be distinct names"),
    ({"features": ["x3"]}, "features must be distinct names"),
    ({"learning_rate": -1}, "learning_rate must be a number"),
    ({"learning_rate": "fast"}, "learning_rate must be a number"),
    ({"exact": "yes"}, "exact must be true or false"),
    ({"optimizer": "lion"}, "optimizer must be one of sgd"),
    ({"dropuot": 0.1}, "Unknown setting(s): dropuot"),
])
def test_bad_settings_are_refused_with_a_message(raw, message):
    with pytest.raises(LabkitError) as info:
        pg.settings(raw)
    assert message in str(info.value)


def test_exported_config_trains_the_same_model_as_the_session(tmp_path):
    import yaml

    from labkit import runs, training
    from labkit.config import TrainConfig

    chosen = pg.settings({"dataset": "xor", "features": ["x1", "x2", "x1*x2"], "hidden": [3],
                          "regularization": "l1", "regularization_rate": 0.003, "noise": 10,
                          "ratio": 60, "seed": 4})
    run = pg.Session(chosen)
    for _ in range(4):
        run.train_epoch()
    exported = yaml.safe_load(pg.config_yaml(chosen, run.epoch))
    assert exported["data_options"] == {"noise": 0.1, "ratio": 60, "seed": 4}
    config = TrainConfig(**{**exported, "runs_dir": str(tmp_path), "name": "pg"}).resolve()
    trained = training.train(config, echo=lambda *a: None)
    model = runs.load_model(trained)
    grid = pg._grid(20)
    np.testing.assert_allclose(model.predict(grid, verbose=0),
                               run.model.predict(grid, verbose=0), atol=1e-5)
    # labkit's test_loss is Keras's: it includes the L1 penalty, which the page leaves out.
    penalty = float(sum(np.asarray(value) for value in run.model.losses))
    assert penalty > 0
    assert trained.metrics["test_loss"] == pytest.approx(run.history[-1]["test_loss"] + penalty,
                                                         rel=1e-4)


def test_exported_python_calls_labkit_train_with_the_same_options():
    chosen = pg.settings({"optimizer": "adam", "learning_rate": 0.01, "schedule": "step",
                          "exact": False, "dropout": 0.2, "early_stopping": 10})
    code = pg.python_code(chosen, 50)
    namespace: dict = {}
    calls = []

    class FakeLabkit:  # records the call the exported code makes
        @staticmethod
        def train(recipe, **options):
            calls.append((recipe, options))

            class Run:
                path, metrics = "runs/x", {}
            return Run()

    exec(code.replace("import labkit", "labkit = FakeLabkit"),
         {"FakeLabkit": FakeLabkit, **namespace})
    recipe, options = calls[0]
    assert recipe == "playground" and options == {
        k: v for k, v in pg.config(chosen, 50).items() if k != "recipe"}
    assert options["schedule"] == {"name": "step", "every": 10, "factor": 0.5}
    assert options["early_stopping"] == {"patience": 10, "restore_best": True}
    assert options["validation_split"] == 0.2 and "shuffle" not in options


def test_heatmaps_are_packed_grids_in_the_playground_units():
    run = pg.Session(pg.settings({"dataset": "gauss", "hidden": [3, 2]}))
    maps = run.heatmaps()
    output = pg.unpacked(maps["output"])
    assert output.shape == (pg.GRID, pg.GRID) and np.abs(output).max() <= 1
    assert [len(layer) for layer in maps["neurons"]] == [3, 2]
    assert pg.unpacked(maps["neurons"][0][0]).shape == (pg.NEURON_GRID, pg.NEURON_GRID)
    expected = 2 * run.model.predict(pg._grid(pg.GRID), verbose=0)[:, 0] - 1  # the exact head
    np.testing.assert_allclose(output.ravel(), np.clip(expected, -1, 1), atol=1 / 127)


def test_early_stopping_holds_out_points_and_restores_the_best_weights():
    run = pg.Session(pg.settings({"dataset": "circle", "early_stopping": 3,
                                  "learning_rate": 10}))
    assert len(run.train[0]) == 200 and len(run.val[0]) == 50
    for _ in range(60):
        run.train_epoch()
        if run.stopped:
            break
    assert "early stopping" in run.stopped or "non-finite" in run.stopped
    if "early stopping" in run.stopped:
        best = min(row["val_loss"] for row in run.history)
        assert run._losses()["val_loss"] == pytest.approx(best, rel=1e-5)


# -- the server (the `server` fixture is in conftest.py) ----------------------------------------


def call(server, path, body=None, method=None):
    """(status, JSON answer) of one request."""
    data = None if body is None else (body if isinstance(body, bytes) else
                                      json.dumps(body).encode())
    request = urllib.request.Request(server.url.rstrip("/") + path, data=data,
                                     method=method or ("POST" if data is not None else "GET"))
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def test_server_listens_on_localhost_only_and_serves_the_page(server):
    assert server.server_address[0] == "127.0.0.1"
    with urllib.request.urlopen(server.url, timeout=30) as answer:
        html = answer.read().decode()
    assert "<title>labkit playground</title>" in html
    assert "http://" not in html and "https://" not in html  # nothing from the network
    status, menus = call(server, "/api/options")
    assert status == 200 and "spiral" in menus["datasets"] and menus["defaults"]["exact"]
    import http.client

    connection = http.client.HTTPConnection("127.0.0.1", server.server_address[1], timeout=30)
    connection.request("GET", "/api/options", headers={"Host": "evil.example:8765"})
    answer = connection.getresponse()
    assert answer.status == 403 and b"127.0.0.1 only" in answer.read()
    connection.close()


def test_the_control_api_refuses_unknown_actions_and_survives_quit(server):
    """Only the page's controls reach the trainer thread: ``quit`` (which once ended the thread
    and left every later request waiting 120 s), ``close`` and other values get a 400 at once,
    and the page keeps working."""
    import time

    status, state = call(server, "/api/session", {"settings": {"dataset": "circle"}})
    sid = state["id"]
    for action in ("quit", "close", "QUIT", None, 3, ["play"]):
        started = time.monotonic()
        status, answer = call(server, "/api/control", {"id": sid, "action": action})
        assert status == 400, action
        assert answer["error"] == ("action must be one of play, pause, step, reset. "
                                   f"Received: {action!r}")
        assert time.monotonic() - started < 5
    assert server.trainer.thread.is_alive()
    status, state = call(server, "/api/control", {"id": sid, "action": "step"})
    assert status == 200 and state["epoch"] == 1


def test_server_session_step_change_export_and_refusals(server, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # exports are answers for the page to download, not files
    status, state = call(server, "/api/session", {"settings": {"dataset": "xor"}})
    assert status == 200 and state["epoch"] == 0 and state["heatmaps"]["output"]
    sid = state["id"]
    status, state = call(server, "/api/control", {"id": sid, "action": "step"})
    assert state["epoch"] == 1 and [r["epoch"] for r in state["history"]] == [0, 1]
    status, state = call(server, "/api/settings", {"id": sid, "settings": {"noise": 10}})
    assert status == 200 and state["epoch"] == 0 and state["settings"]["noise"] == 10
    assert state["settings"]["dataset"] == "xor"  # the rest kept
    for bad, message in (({"noise": 60}, "noise must be"), ({"hidden": [9]}, "hidden must"),
                         ({"speed": 2}, "Unknown setting")):
        status, answer = call(server, "/api/settings", {"id": sid, "settings": bad})
        assert status == 400 and message in answer["error"]
    assert server.trainer.settings.noise == 10  # a refused change changes nothing
    status, answer = call(server, "/api/control", {"id": sid, "action": "jump"})
    assert status == 400 and "action must be" in answer["error"]
    status, answer = call(server, "/api/control", {"id": "nope", "action": "step"})
    assert status == 409 and "Reload the page" in answer["error"]
    status, answer = call(server, "/api/session", b"{not json")
    assert status == 400 and "not valid JSON" in answer["error"]
    status, answer = call(server, "/api/nothing", {"id": sid})
    assert status == 404
    status, answer = call(server, "/api/export", {"id": sid, "format": "yaml"})
    assert status == 200 and answer["filename"] == "playground.yaml"
    assert "dataset: xor" in answer["text"] and "recipe: playground" in answer["text"]
    status, answer = call(server, "/api/export", {"id": sid, "format": "python"})
    assert "labkit.train('playground'" in answer["text"]
    status, answer = call(server, "/api/export", {"id": sid, "format": "pdf"})
    assert status == 400 and "format must be yaml or python" in answer["error"]
    assert list(tmp_path.iterdir()) == []


def test_server_plays_in_the_background_and_refreshes_heatmaps(server):
    status, state = call(server, "/api/session", {"settings": {"dataset": "circle"}})
    sid, version = state["id"], state["version"]
    call(server, "/api/control", {"id": sid, "action": "play"})
    deadline = time.monotonic() + 60  # ~1 s here; a loaded machine may take longer
    while True:
        time.sleep(0.1)
        status, state = call(server, f"/api/state?id={sid}&since=0&have={version}")
        if (state["epoch"] >= 10 and state["version"] - version >= 5
                or time.monotonic() > deadline):
            break
    call(server, "/api/control", {"id": sid, "action": "pause"})
    assert state["playing"] and state["epoch"] >= 10
    assert state["version"] - version >= 5  # heatmaps refreshed while training
    assert state["heatmaps"] is not None
    status, same = call(server, f"/api/state?id={sid}&since=0&have={state['version']}")
    assert "heatmaps" not in same or same["version"] != state["version"]


def test_a_page_that_goes_away_stops_its_training(server, monkeypatch):
    from labkit.playground import server as module

    monkeypatch.setattr(module, "IDLE_SECONDS", 0.5)
    status, state = call(server, "/api/session", {"settings": {}})
    call(server, "/api/control", {"id": state["id"], "action": "play"})
    deadline = time.monotonic() + 30  # the page stops asking: the trainer stops after 0.5 s
    while server.trainer.playing and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not server.trainer.playing
    # A second page takes over; the first one's requests are refused.
    status, other = call(server, "/api/session", {"settings": {}})
    status, answer = call(server, "/api/control", {"id": state["id"], "action": "play"})
    assert status == 409
    status, answer = call(server, "/api/close", {"id": other["id"]})
    assert answer == {"closed": True} and server.trainer.id == ""


def test_port_in_use_is_one_error():
    from labkit.playground.server import Server

    first = Server(port=0)
    try:
        with pytest.raises(LabkitError, match="Pick another port with --port"):
            Server(port=first.server_address[1])
    finally:
        first.server_close()


@pytest.mark.parametrize("signame", ["SIGINT", pytest.param("SIGTERM", marks=pytest.mark.slow)])
def test_cli_playground_prints_the_url_and_stops_cleanly_on_ctrl_c(signame):
    import os
    import signal
    import subprocess
    import sys
    from pathlib import Path

    def as_from_a_terminal():  # pytest-xdist's workers ignore SIGINT, and children inherit it
        signal.signal(signal.SIGINT, signal.SIG_DFL)

    labkit = str(Path(sys.executable).parent / "labkit")
    process = subprocess.Popen([labkit, "playground", "--port", "0"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "PYTHONUNBUFFERED": "1"},
                               preexec_fn=as_from_a_terminal)
    try:
        line = process.stdout.readline()
        assert line.startswith("labkit playground: http://127.0.0.1:")
        url = line.split()[2]
        with urllib.request.urlopen(url + "api/options", timeout=30) as answer:
            assert answer.status == 200
        process.send_signal(getattr(signal, signame))
        out, err = process.communicate(timeout=30)
    finally:
        process.kill()
    assert process.returncode == 0 and "stopped" in out
    assert "Traceback" not in err


def test_sgd_is_keras_own_unless_the_model_has_the_playgrounds_l1():
    import keras

    from labkit import optim
    from labkit.layers import PlaygroundSGD
    from recipes import playground

    plain = playground.build((2,), 2, regularization="l1", regularization_rate=0.01)
    exact = playground.build((2,), 2, "binary", exact=True, regularization="l1",
                             regularization_rate=0.01)
    exact_l2 = playground.build((2,), 2, "binary", exact=True, regularization="l2",
                                regularization_rate=0.01)
    # Keras's own class, so a saved sgd run reloads with plain keras.models.load_model.
    assert type(optim.make("sgd", 0.1, model=plain)) is keras.optimizers.SGD
    assert type(optim.make("sgd", 0.1, model=exact_l2)) is keras.optimizers.SGD
    assert type(optim.make("sgd", 0.1)) is keras.optimizers.SGD
    assert isinstance(optim.make("sgd", 0.1, model=exact), PlaygroundSGD)
    assert type(optim.make("adam", 0.1, model=exact)) is keras.optimizers.Adam


def test_playground_output_and_the_regression_boundary_plot(tmp_path):
    from labkit import data, plots
    from recipes import playground

    softmax = np.array([[0.9, 0.1], [0.2, 0.8]])
    np.testing.assert_allclose(plots.playground_output(softmax), [-0.8, 0.6])
    np.testing.assert_allclose(plots.playground_output(np.array([[0.75]]), "binary"), [0.5])
    np.testing.assert_allclose(plots.playground_output(np.array([[-0.3]]), "regression"), [-0.3])
    loaded = data.load("plane", validation_split=0.0)
    model = playground.build((2,), 1, "regression", hidden=[2])
    plots.decision_boundary(model, loaded, tmp_path / "boundary.png")
    assert (tmp_path / "boundary.png").stat().st_size > 10_000
