"""labkit ``train`` against the plain-Keras MNIST convnet script, at MNIST scale.

    .venv/bin/python bench/bench_mnist.py [--epochs 3] [--repeat 3] [--precision mixed]
        [--also "--distribute data-parallel"]

Writes 60 000 random MNIST-shaped uint8 training images (and 10 000 test images) as an .npz,
then runs, alternating and each as a cold process: ``bench/reference_convnet.py`` (the keras-io
example: batch 128, Adam, 10 % validation) and ``labkit train cnn`` with the same model
(``filters=[32,64]``, ``padding=valid``, ``dropout=0.5``), batch, optimizer and validation
fraction, its checkpoints, history and test evaluation included. Reports the steady-state
training images/s (the median epoch after the first, validation included on both sides), the
whole-command time, and labkit's ratios with their spread over the repeats.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
TRAIN, TEST = 60_000, 10_000


def write_data(path: Path) -> None:
    rng = np.random.default_rng(0)
    np.savez(path, x_train=rng.integers(0, 256, (TRAIN, 28, 28), dtype=np.uint8),
             y_train=rng.integers(0, 10, TRAIN), x_test=rng.integers(0, 256, (TEST, 28, 28),
                                                                      dtype=np.uint8),
             y_test=rng.integers(0, 10, TEST))


def timed(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    return time.perf_counter() - start


def reference(data: Path, epochs: int, work: Path) -> tuple[float, float]:
    """(steady images/s, whole seconds) of the plain-Keras script."""
    out = work / "reference.json"
    whole = timed([sys.executable, str(ROOT / "bench" / "reference_convnet.py"), str(data),
                   str(epochs), str(out)])
    result = json.loads(out.read_text())
    return result["train_examples"] / statistics.median(result["seconds"][1:]), whole


def labkit(data: Path, epochs: int, work: Path, extra: list[str]) -> tuple[float, float]:
    """(steady images/s, whole seconds) of ``labkit train``."""
    import pandas as pd

    name = f"run{len(list(work.iterdir()))}"
    # the CLI through this Python (also where labkit is importable but has no entry script)
    command = [sys.executable, "-c", "from labkit.cli import main; main()"]
    whole = timed([*command, "train", "cnn", "--dataset", str(data),
                   "--set", "filters=[32,64]", "--set", "padding=valid", "--set", "dropout=0.5",
                   "--batch-size", "128", "--optimizer", "adam", "--validation-split", "0.1",
                   "--epochs", str(epochs), "--runs-dir", str(work), "--name", name, *extra])
    history = pd.read_csv(work / name / "history.csv")
    config = json.loads((work / name / "config.json").read_text())
    return config["derived"]["train_examples"] / history["seconds"][1:].median(), whole


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--precision", action="append", default=[],
                        help="also run labkit with --precision P (repeatable)")
    parser.add_argument("--also", action="append", default=[], metavar="ARGS",
                        help="also run labkit with these train options, e.g. \"--distribute "
                             "data-parallel\" (repeatable)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        data = work / "mnist_random.npz"
        write_data(data)
        runs = work / "runs"
        runs.mkdir()
        sides = {"reference": lambda: reference(data, args.epochs, work),
                 "labkit": lambda: labkit(data, args.epochs, runs, [])}
        for precision in args.precision:
            sides[f"labkit {precision}"] = lambda p=precision: labkit(
                data, args.epochs, runs, ["--precision", p])
        for also in args.also:
            sides[f"labkit {also}"] = lambda a=also: labkit(data, args.epochs, runs, shlex.split(a))
        results: dict[str, list[tuple[float, float]]] = {name: [] for name in sides}
        for _ in range(args.repeat):
            for name, run in sides.items():
                results[name].append(run())
                print(f"{name:<18.40} {results[name][-1][0]:8.0f} images/s steady, "
                      f"{results[name][-1][1]:6.1f} s whole", flush=True)
    from labkit._startup import import_tensorflow

    import_tensorflow()  # quietly, for the version line
    import keras

    print(f"\n{platform.processor() or platform.machine()}, Keras {keras.__version__} on "
          f"{keras.backend.backend()}")
    ref_speed = statistics.median(s for s, _ in results["reference"])
    ref_whole = statistics.median(w for _, w in results["reference"])
    print(f"\nmedians of {args.repeat}, {args.epochs} epochs, {TRAIN} images (90 % trained on):")
    for name, values in results.items():
        speeds, wholes = [s for s, _ in values], [w for _, w in values]
        speed, whole = statistics.median(speeds), statistics.median(wholes)
        print(f"{name:<18.40} {speed:8.0f} images/s (spread {np.ptp(speeds) / speed:.0%}), "
              f"{whole:6.1f} s whole (spread {np.ptp(wholes) / whole:.0%}); "
              f"ratio to reference: {speed / ref_speed:.2f}× steady, "
              f"{whole / ref_whole:.2f}× whole time")


if __name__ == "__main__":
    main()
