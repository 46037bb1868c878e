"""Right answers on the defaults, on real data nobody here made: scikit-learn's bundled sets
written as CSV, labkit's mlp on its defaults against a linear scikit-learn model fitted on the
same training split. Regression targets are standardised inside the model's output, so a model
answers in the target's units and its errors are reported in them."""

from __future__ import annotations

import json

import numpy as np
import pytest

import labkit
from labkit import data, training
from labkit.data.base import Preprocessing


def _csv(tmp_path, loader: str):
    import sklearn.datasets

    path = tmp_path / f"{loader}.csv"
    getattr(sklearn.datasets, loader)(as_frame=True).frame.to_csv(path, index=False)
    return path


def _ridge_mae(path, task=None) -> float:
    from sklearn.linear_model import Ridge
    from sklearn.metrics import mean_absolute_error
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    loaded = data.load(str(path), options={"target": "target"}, task=task)
    (x, y), (xt, yt) = loaded.train, loaded.test
    ridge = make_pipeline(StandardScaler(), Ridge()).fit(x, y)
    return float(mean_absolute_error(yt, ridge.predict(xt)))


def test_a_regression_csv_on_the_defaults_is_as_good_as_ridge(tmp_path):
    path = _csv(tmp_path, "load_diabetes")
    run = labkit.train("mlp", dataset=str(path), data_options={"target": "target"},
                       runs_dir=str(tmp_path / "runs"), echo=lambda _: None)
    ridge = _ridge_mae(path)
    assert run.metrics["test_mae"] <= 1.1 * ridge  # measured 43.5 against 45.8
    recorded = json.loads(run.file("config.json").read_text())["data_spec"]["targets"]
    loaded = data.load(str(path), options={"target": "target"})
    train_y = loaded.train[1]
    assert recorded["mean"] == pytest.approx([float(train_y.mean())])
    assert recorded["std"] == pytest.approx([float(train_y.std())])
    # the saved model answers in the target's units, from raw columns
    predicted = run.model.predict(loaded.test[0], verbose=0)
    assert abs(float(predicted.mean()) - float(loaded.test[1].mean())) < 0.3 * recorded["std"][0]
    assert float(np.abs(predicted - loaded.test[1]).mean()) == pytest.approx(
        run.metrics["test_mae"], rel=1e-3)
    assert labkit.runs.unwrap(run.model).layers[-1].name == training.TARGET_UNITS
    # the loss is counted in target standard deviations: predicting the mean scores 1
    assert run.history["loss"].iloc[0] < 2 and run.history["val_loss"].iloc[-1] < 1
    # with Keras's own loss and a weight, so the model files load without labkit
    import zipfile

    for name in ("model.keras", "last.keras"):
        with zipfile.ZipFile(run.file(name)) as archive:
            assert "labkit" not in archive.read("config.json").decode()


def test_an_integer_target_trains_as_regression_when_asked(tmp_path):
    path = _csv(tmp_path, "load_digits")
    assert data.load(str(path), options={"target": "target"}).spec.task == "classification"
    run = labkit.train("mlp", dataset=str(path), data_options={"target": "target"},
                       task="regression", runs_dir=str(tmp_path / "runs"),
                       echo=lambda _: None)
    assert run.spec.task == "regression" and run.spec.num_classes == 1
    assert run.metrics["test_mae"] <= 1.1 * _ridge_mae(path, "regression")  # 0.85 vs 1.52


def test_a_constant_feature_is_not_magnified():
    """A column that is constant in the training split keeps its scale (StandardScaler's rule):
    the digits' always-0 border pixels once turned a 1 elsewhere into 10⁷."""
    prep = Preprocessing(mean=(0.0, 2.0), variance=(0.0, 4.0))
    np.testing.assert_allclose(prep.numpy([[1.0, 4.0]]), [[1.0, 1.0]])
