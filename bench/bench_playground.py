"""The playground page's training speed: epochs per second of a session (250 points, batch 10,
the Playground's default network) alone and with heatmaps refreshed every 0.1 s as the page's
trainer does, beside plain Keras ``fit`` on the same model and data, as ratios.

Run: ``make bench-playground`` (about a minute).
"""

from __future__ import annotations

import time

from labkit._startup import import_tensorflow

import_tensorflow()

from labkit.playground import session as pg  # noqa: E402
from labkit.playground.server import HEATMAP_EVERY  # noqa: E402

SECONDS = 5.0
CASES = {"circle, x1 x2, [4, 2]": {"dataset": "circle"},
         "spiral, 4 features, [8, 8, 4]": {"dataset": "spiral", "hidden": [8, 8, 4],
                                           "features": ["x1", "x2", "sin(x1)", "sin(x2)"]}}


def session_speed(raw: dict, heatmaps: bool) -> tuple[float, float]:
    """(epochs/s, heatmaps/s) of a session trained for SECONDS."""
    run = pg.Session(pg.settings(raw))
    for _ in range(3):  # compile
        run.train_epoch()
    run.heatmaps()
    epochs = maps = 0
    start = last = time.perf_counter()
    while time.perf_counter() - start < SECONDS:
        run.train_epoch()
        epochs += 1
        if heatmaps and time.perf_counter() - last >= HEATMAP_EVERY:
            run.heatmaps()
            maps += 1
            last = time.perf_counter()
    seconds = time.perf_counter() - start
    return epochs / seconds, maps / seconds


def keras_fit_speed(raw: dict) -> float:
    """Epochs/s of the same compiled model under plain ``model.fit`` (one call, many epochs)."""
    run = pg.Session(pg.settings(raw))
    x, y = run.train
    run.model.fit(x, y, batch_size=10, epochs=2, shuffle=False, verbose=0)
    epochs = 40
    start = time.perf_counter()
    run.model.fit(x, y, batch_size=10, epochs=epochs, shuffle=False, verbose=0)
    return epochs / (time.perf_counter() - start)


def main() -> None:
    print(f"{'case':32} {'session':>9} {'+heatmaps':>10} {'maps/s':>7} {'keras fit':>10} "
          f"{'ratio':>6}")
    for name, raw in CASES.items():
        alone, _ = session_speed(raw, heatmaps=False)
        playing, maps = session_speed(raw, heatmaps=True)
        reference = keras_fit_speed(raw)
        print(f"{name:32} {alone:8.0f}/s {playing:9.0f}/s {maps:7.1f} {reference:9.0f}/s "
              f"{playing / reference:5.1f}×")
    print("epochs per second on 250 training points at batch 10; ratio: session with heatmaps "
          "÷ plain Keras fit")


if __name__ == "__main__":
    main()
