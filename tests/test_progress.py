"""Progress on every long wait (labkit.progress): whole lines outside a terminal, at least one per
interval even when nothing moves, the innermost bar found from deep inside a wait; a lab run's
lines within ~10 s; a long epoch's heartbeat."""

from __future__ import annotations

import io
import re
import subprocess
import sys
import time

import keras
import numpy as np
import pytest

from labkit import progress
from labkit.callbacks import Heartbeat


def test_outside_a_terminal_a_bar_writes_whole_lines_also_when_nothing_moves():
    out = io.StringIO()
    with progress.bar("waiting", total=3, unit="steps", stream=out, interval=0.2,
                      delay=0) as shown:
        assert progress.current() is shown
        time.sleep(0.7)  # nothing moves: the ticker still writes
        shown.update(1)
        shown.set_postfix_str("epoch 2/5", refresh=False)
        time.sleep(0.5)
    text = out.getvalue()
    assert "\r" not in text
    lines = text.splitlines()
    assert len(lines) >= 4 and all(line.startswith("waiting: ") for line in lines)
    assert "1/3" in lines[-1] and "epoch 2/5" in lines[-1]
    assert isinstance(progress.current(), progress._Quiet)  # closed: nothing open any more


def test_a_disabled_bar_or_a_short_wait_writes_nothing():
    for enabled in (False, True):  # a wait shorter than the delay shows no bar
        out = io.StringIO()
        with progress.bar("quiet", stream=out, enabled=enabled, delay=5) as shown:
            shown.update(3)
            shown.set_postfix_str("x", refresh=False)
        assert out.getvalue() == ""


def test_a_long_epoch_gets_a_heartbeat_line(capsys):
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    model.fit(np.zeros((64, 4)), np.zeros((64, 1)), batch_size=8, epochs=1, verbose=0,
              callbacks=[Heartbeat(interval=0.0)])
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 8  # interval 0: a line after every step, whatever the machine's speed
    for step, line in enumerate(lines, start=1):
        assert re.fullmatch(rf"  epoch 1/1: step {step}/8, \d+ s", line), line
    assert Heartbeat.async_safe  # Keras keeps its asynchronous batch-end dispatch on JAX


@pytest.mark.slow  # the full dropout lab in a fresh process: ~30 s
def test_a_lab_run_outside_a_terminal_shows_progress_every_ten_seconds(tmp_path):
    process = subprocess.Popen([sys.executable, "-m", "labkit", "lab", "run", "dropout",
                                "--out", str(tmp_path)], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    seen = []
    for line in process.stderr:
        seen.append((time.monotonic(), line.rstrip()))
    process.wait(timeout=300)
    assert process.returncode == 0, seen[-5:]
    shown = [(t, line) for t, line in seen if line.startswith("dropout (seed ")]
    assert len(shown) >= 3 and "fits" in shown[-1][1]
    gaps = [b[0] - a[0] for a, b in zip(shown, shown[1:], strict=False)]
    assert max(gaps) < progress.INTERVAL + 3  # a line at least every ~10 s
    assert "\r" not in "".join(line for _, line in seen)
