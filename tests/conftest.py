import os
import subprocess
from pathlib import Path

from labkit import layout

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # noqa: E402
from click.testing import CliRunner  # noqa: E402

from labkit.cli import main  # noqa: E402

CHECKOUT = Path(__file__).resolve().parent.parent
BUILD = (".venv/", ".pytest_cache/", ".ruff_cache/", "__pycache__/", ".egg-info/")


def checkout_state() -> set[str] | None:
    """The checkout's untracked and ignored paths (``git status``), less what installing and
    running pytest make (.venv, caches); None outside a git checkout. Edits to tracked files
    are left out: a developer may be editing while the suite runs."""
    try:
        found = subprocess.run(["git", "status", "--porcelain", "--ignored"], cwd=CHECKOUT,
                               capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return None
    if found.returncode:
        return None
    return {line for line in found.stdout.splitlines()
            if line.startswith(("??", "!!")) and not line.endswith(BUILD)}


def pytest_configure(config):
    """Load Keras on its configured backend before any test module: `labkit describe` would
    otherwise pick the light numpy backend for the whole test process. TensorFlow starts as the
    CLI starts it, quietly. Not in pytest-xdist's controller, which runs no test (its ~4-8 s
    would come before the workers start)."""
    if getattr(config.option, "numprocesses", None) and not hasattr(config, "workerinput"):
        return
    from labkit._startup import import_tensorflow

    import_tensorflow()
    import keras  # noqa: F401


def pytest_sessionstart(session):
    if not hasattr(session.config, "workerinput"):  # the controller, not an xdist worker
        session.config.checkout_before = checkout_state()


def pytest_sessionfinish(session, exitstatus):
    """Tests never write into the checkout: a file a test left there fails the run."""
    before = getattr(session.config, "checkout_before", None)
    after = checkout_state() if before is not None else None
    if before is None or after is None:
        return
    left = "\n  ".join(sorted(after - before))
    if not after - before:
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(f"\nThese appeared in the checkout while the tests ran (tests must "
                            f"write under tmp_path):\n  {left}", red=True)
    session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture(autouse=True, scope="session")
def _outside_the_checkout(tmp_path_factory):
    """Tests run from a scratch folder: what lands in the current folder by default (runs/,
    labs/, a download) lands there, never in the checkout."""
    here = os.getcwd()
    os.chdir(tmp_path_factory.mktemp("cwd"))
    yield
    os.chdir(here)


@pytest.fixture
def cli():
    """Invoke the CLI in-process: ``cli("train", "cnn", ...)`` → click Result."""
    runner = CliRunner()

    def invoke(*args):
        return runner.invoke(main, [str(a) for a in args], catch_exceptions=False)

    return invoke


@pytest.fixture(scope="session")
def digits_run(tmp_path_factory):
    """A short cnn run on digits shared by the evaluate / export / runs tests."""
    from labkit.config import TrainConfig
    from labkit.training import train

    runs_dir = tmp_path_factory.mktemp("runs")
    config = TrainConfig(recipe="cnn", dataset="digits", epochs=3, runs_dir=str(runs_dir),
                         name="digits-cnn", hparams={"filters": [8, 16]})
    return train(config, echo=lambda _: None)


@pytest.fixture(scope="session")
def digits_npz(tmp_path_factory):
    """``digits_npz(count)`` → an .npz of the first ``count`` bundled digits (uint8 images),
    for runs whose splits must divide evenly."""
    import numpy as np
    from sklearn.datasets import load_digits

    made = {}

    def make(count: int):
        if count not in made:
            bunch = load_digits()
            path = tmp_path_factory.mktemp("npz") / f"digits{count}.npz"
            np.savez(path, x=bunch.images[:count].astype("uint8"), y=bunch.target[:count])
            made[count] = path
        return made[count]

    return make


@pytest.fixture(scope="session")
def base_run(tmp_path_factory):
    """``base_run(input_shape)`` → a run directory holding an mlp for that input shape."""
    from labkit import registry, runs

    made = {}

    def make(input_shape):
        if input_shape not in made:
            run = runs.create_run(tmp_path_factory.mktemp("base"), "base")
            model = registry.build("mlp", input_shape=input_shape, num_classes=4, units=[8])
            model.save(run.file(layout.MODEL))
            made[input_shape] = run.path
        return made[input_shape]

    return make


@pytest.fixture(scope="session")
def notop_weights(tmp_path_factory):
    """A VGG16 notop weights file in Keras's own layout, saved from a random base."""
    import h5py
    import keras
    from keras.src.legacy.saving import legacy_h5_format

    base = keras.applications.VGG16(include_top=False, weights=None, input_shape=(32, 32, 3))
    path = tmp_path_factory.mktemp("weights") / "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5"
    with h5py.File(path, "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, base)
    return path, base


@pytest.fixture()
def server():
    """A `labkit playground` server on a free port of 127.0.0.1, serving from a thread."""
    import threading

    from labkit.playground.server import Server

    served = Server(port=0)
    thread = threading.Thread(target=served.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    yield served
    served.shutdown()
    served.server_close()
