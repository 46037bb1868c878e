"""Small builders the test files share."""

from __future__ import annotations

import pandas as pd

from labkit import layout, runs, training
from labkit.config import TrainConfig


def small_config(tmp_path, **overrides) -> TrainConfig:
    """A small, fast digits mlp config writing to ``tmp_path/run``."""
    values = {"recipe": "mlp", "hparams": {"units": [16]}, "epochs": 2,
              "runs_dir": str(tmp_path), "name": "run", **overrides}
    return TrainConfig(**values)


def fit(tmp_path, stop=None, **overrides) -> runs.Run:
    """Train :func:`small_config` silently (``stop``: the run's stop event); the run."""
    return training.train(small_config(tmp_path, **overrides), echo=lambda _: None, stop=stop)


def history(run: runs.Run) -> pd.DataFrame:
    return pd.read_csv(run.file(layout.HISTORY))


def error_line(result) -> str:
    """The single line a failed CLI command printed (asserting it is one line)."""
    assert result.output.count("\n") == 1 and "Traceback" not in result.output, result.output
    return result.output.rstrip("\n")
