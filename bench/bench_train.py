"""labkit's training path vs plain Keras on the same data and model; prints throughput ratios.

    .venv/bin/python bench/bench_train.py [--epochs 10] [--repeat 3] [--recipe cnn]
        [--batch-size 32] [--labkit-option steps_per_execution=auto]
    .venv/bin/python bench/bench_train.py --table     # every row of `make bench`

Both sides train a recipe on digits with the same optimizer, batch size and epochs; the plain
side builds, compiles, fits on float arrays (Keras's own array adapter) and evaluates on the test
split; labkit goes through ``labkit.training.train`` (data loading, run directory, history,
metrics, checkpoints, model and plot writes included). Both are timed cold, graph tracing
included, with the same progress output, alternating, in this process. Two ratios: the whole
time's, and the steady epochs' (the median epoch after the first, from one epoch's start to the
next: validation and every epoch-end write included, on both sides alike).

``--table`` runs, each under TensorFlow and JAX in a fresh process, the convolution-bound case
(the cnn, batch 32) and the dispatch-bound one (the mlp, batch 16: tiny steps, where per-step
overhead is all there is), the latter also with labkit's ``--steps-per-execution auto``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROWS = (  # (recipe, batch size, labkit options), run under each backend by --table
    ("cnn", 32, {}),
    ("mlp", 16, {}),
    ("mlp", 16, {"steps_per_execution": "auto"}),
)
BACKENDS = ("tensorflow", "jax")


class EpochClock:
    """Seconds per epoch of a plain ``fit`` (validation included), as labkit's history has."""

    def __new__(cls):
        import keras

        class Clock(keras.callbacks.Callback):
            def __init__(self) -> None:
                super().__init__()
                self.seconds: list[float] = []

            def on_epoch_begin(self, epoch, logs=None):
                self._start = time.perf_counter()

            def on_epoch_end(self, epoch, logs=None):
                self.seconds.append(time.perf_counter() - self._start)

        return Clock()


@contextlib.contextmanager
def epoch_starts():
    """The times every ``fit`` inside starts an epoch (Keras's ``CallbackList``, which both
    sides go through): from one start to the next is a whole epoch, training, validation and
    every callback's epoch-end work (labkit's history, metrics and checkpoint) included."""
    import keras

    starts: list[float] = []
    original = keras.callbacks.CallbackList.on_epoch_begin

    def on_epoch_begin(self, epoch, logs=None):
        starts.append(time.perf_counter())
        return original(self, epoch, logs)

    keras.callbacks.CallbackList.on_epoch_begin = on_epoch_begin
    try:
        yield starts
    finally:
        keras.callbacks.CallbackList.on_epoch_begin = original


def steady_epoch(starts: list[float]) -> float:
    """The median epoch after the first (which compiles): from one epoch's start to the
    next's."""
    return statistics.median(b - a for a, b in zip(starts[1:], starts[2:], strict=False))


def plain_keras(epochs: int, batch_size: int, recipe: str) -> tuple[float, float]:
    """(whole seconds, steady seconds per epoch) of plain ``model.fit`` on arrays."""
    from labkit import data, registry
    from labkit.data import pipeline
    from labkit.training import progress_mode

    with epoch_starts() as starts:
        start = time.perf_counter()
        loaded = data.load("digits")
        x, y = pipeline.model_input(loaded.train[0], loaded.spec.preprocessing), loaded.train[1]
        xv, yv = pipeline.model_input(loaded.val[0], loaded.spec.preprocessing), loaded.val[1]
        model = registry.build(recipe, input_shape=loaded.spec.input_shape, num_classes=10)
        model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
        model.fit(x, y, batch_size=batch_size, epochs=epochs, validation_data=(xv, yv),
                  verbose=progress_mode())
        model.evaluate(pipeline.model_input(loaded.test[0], loaded.spec.preprocessing),
                       loaded.test[1], verbose=0)
        whole = time.perf_counter() - start
    return whole, steady_epoch(starts)


def labkit_train(epochs: int, batch_size: int, recipe: str,
                 options: dict) -> tuple[float, float]:
    """(whole seconds, steady seconds per epoch) of ``labkit.training.train``."""
    from labkit.config import TrainConfig
    from labkit.training import train

    with tempfile.TemporaryDirectory() as runs_dir, epoch_starts() as starts:
        config = TrainConfig(recipe, epochs=epochs, batch_size=batch_size, runs_dir=runs_dir,
                             **options)
        start = time.perf_counter()
        train(config, echo=lambda _: None)
        whole = time.perf_counter() - start
    return whole, steady_epoch(starts)


def measure(epochs: int, batch_size: int, recipe: str, options: dict, repeat: int) -> dict:
    """Both sides ``repeat`` times, alternating: medians, ratios (labkit / plain, >1 is labkit
    faster) and labkit's spread."""
    from labkit._startup import import_tensorflow

    import_tensorflow()  # TensorFlow's start-up notices, silenced as the CLI silences them
    import keras

    keras.utils.set_random_seed(0)
    results = {"plain": [], "labkit": []}
    for _ in range(repeat):
        # both sides print their epoch lines as usual, into the void: only the result is shown
        with open(os.devnull, "w") as void, contextlib.redirect_stdout(void):
            results["plain"].append(plain_keras(epochs, batch_size, recipe))
            results["labkit"].append(labkit_train(epochs, batch_size, recipe, options))
    whole = {k: statistics.median(w for w, _ in v) for k, v in results.items()}
    steady = {k: statistics.median(s for _, s in v) for k, v in results.items()}
    return {"backend": keras.backend.backend(), "recipe": recipe, "batch_size": batch_size,
            "options": options, "whole": whole, "steady": steady,
            "whole_ratio": whole["plain"] / whole["labkit"],
            "steady_ratio": steady["plain"] / steady["labkit"]}


def table(epochs: int, repeat: int) -> None:
    """Every row of :data:`ROWS` under each backend, each in a fresh process."""
    print("| backend | case | plain s/epoch | labkit s/epoch | labkit/plain steady | "
          "labkit/plain whole time |")
    print("|---|---|---|---|---|---|")
    for backend in BACKENDS:
        for recipe, batch, options in ROWS:
            extra = [f"--labkit-option={k}={v}" for k, v in options.items()]
            done = subprocess.run(
                [sys.executable, __file__, "--json", "--epochs", str(epochs), "--repeat",
                 str(repeat), "--recipe", recipe, "--batch-size", str(batch), *extra],
                capture_output=True, text=True,
                env={**os.environ, "KERAS_BACKEND": backend, "JAX_PLATFORMS": "cpu"})
            if done.returncode != 0:
                print(f"| {backend} | {recipe} batch {batch} | failed: "
                      f"{done.stderr.strip().splitlines()[-1:]} |")
                continue
            row = json.loads(done.stdout.strip().splitlines()[-1])
            case = f"{recipe}, batch {batch}" + "".join(f", {k}={v}" for k, v in options.items())
            print(f"| {backend} | {case} | {row['steady']['plain']:.3f} | "
                  f"{row['steady']['labkit']:.3f} | {row['steady_ratio']:.2f} | "
                  f"{row['whole_ratio']:.2f} |", flush=True)
    print(f"\n{epochs} epochs, medians of {repeat}, each pair alternating in one process; "
          "ratios above 1: labkit faster.")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--recipe", default="cnn")
    parser.add_argument("--labkit-option", action="append", default=[], metavar="KEY=VALUE",
                        help="a TrainConfig field for labkit's side only, e.g. "
                             "steps_per_execution=auto")
    parser.add_argument("--table", action="store_true", help="every row, both backends")
    parser.add_argument("--json", action="store_true", help="one JSON line (for --table)")
    args = parser.parse_args()
    if args.table:
        table(args.epochs, args.repeat)
        return
    options = {k: int(v) if v.isdigit() else v
               for k, v in (option.split("=", 1) for option in args.labkit_option)}
    row = measure(args.epochs, args.batch_size, args.recipe, options, args.repeat)
    if args.json:
        print(json.dumps(row))
        return
    print(f"{row['backend']}, {args.recipe}, batch {args.batch_size}, {args.epochs} epochs, "
          f"medians of {args.repeat}:")
    for side in ("plain", "labkit"):
        print(f"  {side:<7} {row['whole'][side]:6.2f} s whole, {row['steady'][side]:.4f} s per "
              "steady epoch")
    print(f"labkit / plain keras: {row['steady_ratio']:.2f}× steady, {row['whole_ratio']:.2f}× "
          "whole time (above 1: labkit faster)")


if __name__ == "__main__":
    main()
