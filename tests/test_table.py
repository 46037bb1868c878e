"""CSV files as datasets (labkit.data.table): targets and the task they imply, standardised
features, every bad file, and a regression and a multi-label run end to end whose saved models
take the raw columns."""

import json

import keras
import numpy as np
import pandas as pd
import pytest
from helpers import error_line

import labkit
from labkit import layout
from labkit.data import table
from labkit.errors import LabkitError


@pytest.fixture(scope="module")
def houses(tmp_path_factory):
    """A house-price table (prices in 100 000s, as the R lab's Boston prices are in 1000s):
    linear in features of very different scales."""
    rng = np.random.default_rng(0)
    n = 300
    frame = pd.DataFrame({"area": rng.uniform(40, 200, n), "rooms": rng.integers(1, 7, n),
                          "age": rng.uniform(0, 80, n), "garden": rng.integers(0, 2, n) == 1})
    frame["price"] = 0.1 * frame["area"] + 2 * frame["rooms"] - 0.1 * frame["age"] + \
        rng.normal(0, 0.5, n)
    path = tmp_path_factory.mktemp("csv") / "houses.csv"
    frame.to_csv(path, index=False)
    return path


def with_labels(houses, target):
    """``houses`` without the price, with class and label columns; its path."""
    frame = pd.read_csv(houses)
    frame["kind"] = np.where(frame["area"] > 120, "villa", "flat")
    frame["cheap"] = (frame["price"] < frame["price"].median()).astype(int)
    frame["old"] = (frame["age"] > 40).astype(int)
    targets = list(np.atleast_1d(target))
    frame = frame.drop(columns=[c for c in ("price", "kind") if c not in targets])
    path = houses.with_name(f"{'-'.join(targets)}.csv")
    frame.to_csv(path, index=False)
    return path


def test_a_float_target_is_regression_with_standardised_features(houses):
    loaded = labkit.data.load(str(houses), options={"target": "price"})
    spec = loaded.spec
    assert spec.task == "regression" and spec.num_classes == 1
    assert spec.input_shape == (4,)  # area, rooms, age, garden
    x, y = loaded.train
    assert y.shape == (len(x), 1) and y.dtype == np.float32
    np.testing.assert_allclose(spec.mean, x.mean(axis=0), rtol=1e-5)
    fed = spec.preprocessing.numpy(x)
    np.testing.assert_allclose(fed.mean(axis=0), 0, atol=1e-4)
    np.testing.assert_allclose(fed.std(axis=0), 1, atol=1e-3)
    assert sum(len(part[1]) for part in (loaded.train, loaded.val, loaded.test)) == 300


@pytest.mark.parametrize(("target", "task", "names"), [
    ("kind", "binary", ("flat", "villa")),  # text: named by value, sorted
    ("cheap", "binary", ("0", "1")),
    ("rooms", "classification", tuple(map(str, range(7)))),  # few integers: classes
    (["cheap", "old"], "multilabel", ("cheap", "old")),
])
def test_the_task_follows_the_target_columns(houses, target, task, names):
    spec = labkit.data.catalog_spec(str(with_labels(houses, target)), {"target": target})
    assert (spec.task, spec.class_names) == (task, names)


def test_an_integer_quantity_is_regression(tmp_path):
    frame = pd.DataFrame({"x": np.arange(50.0), "price": np.arange(50) * 1000 + 5})
    frame.to_csv(tmp_path / "t.csv", index=False)
    assert labkit.data.catalog_spec(str(tmp_path / "t.csv"), {"target": "price"}).task == \
        "regression"


@pytest.mark.parametrize(("text", "options", "message"), [
    ("a,b,y\n1,2,3\n", {}, "Name the column to predict: --target COLUMN (columns of {path}: a, "
                           "b, y)."),
    ("a,b,price\n1,2,3\n", {"target": "prcie"}, "{path} has no column 'prcie'. Did you mean: "
                                                 "price? Columns: a, b, price."),
    ("", {"target": "y"}, "{path} is empty: a CSV dataset needs a header row and data rows."),
    ("a,y\n", {"target": "y"}, "{path} has a header but no data rows."),
    ("a,city,y\n1,Lund,0.5\n2,Umeå,1.5\n", {"target": "y"},
     "{path}: feature column 'city' is not numeric (e.g. 'Lund'); convert it to numbers or drop "
     "the column."),
    ("a,b,y\n1,,0.5\n2,3,\n3,,1\n", {"target": "y"},
     "{path} has missing values in 'b' (2 rows), 'y' (1 rows); fill them, or pass "
     "--data-option dropna=true to drop those rows."),
    ("a,y\n1,0.5\n", {"target": "y", "dropna": "yes"}, "dropna is true or false. Received: 'yes'"),
    ("a,y\n1,0.5\n", {"target": "y", "image_size": "9x9"},
     "Dataset '{name}' has no option 'image_size'. Known: target, dropna."),
])
def test_bad_csv_files(tmp_path, text, options, message):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(LabkitError) as info:
        labkit.data.catalog_spec(str(path), options)
    assert str(info.value) == message.format(path=path.resolve(), name=path)


def test_dropna_drops_and_counts_the_rows(tmp_path):
    rows = "\n".join(f"{i},{'' if i % 10 == 0 else i * 2},{i * 0.5}" for i in range(60))
    (tmp_path / "holes.csv").write_text("a,b,y\n" + rows + "\n")
    loaded = labkit.data.load(str(tmp_path / "holes.csv"),
                              options={"target": "y", "dropna": True})
    assert sum(len(part[1]) for part in (loaded.train, loaded.val, loaded.test)) == 54
    assert loaded.notes == ("read as comma-separated",
                            "6 row(s) with missing values dropped (dropna)")


# What R writes: write.csv2 in a Swedish locale (semicolons, decimal commas, quoted names, NA,
# row names in a first column named ""), and write.csv of the same rows.
CSV2 = '"";"längd";"vikt";"art"\n' + "".join(
    f'"{i + 1}";{150 + i},{i % 10};{50 + i % 7},25;"{"katt" if i % 2 else "hund"}"\n'
    for i in range(40)) + '"41";NA;60,5;"katt"\n'


def test_r_write_csv2_and_write_csv_read_alike(tmp_path, cli):
    (tmp_path / "r2.csv").write_text(CSV2, encoding="utf-8")
    comma = CSV2.replace(",", ".").replace(";", ",")
    (tmp_path / "r1.csv").write_text(comma, encoding="utf-8")
    tables = [table.read(str(tmp_path / name), {"target": "art", "dropna": True})
              for name in ("r2.csv", "r1.csv")]
    for read in tables:
        assert read.features == ("längd", "vikt") and read.class_names == ("hund", "katt")
        assert read.x[1].tolist() == pytest.approx([151.1, 51.25]) and read.dropped == 1
        assert read.x.dtype == np.float32 and len(read.x) == 40
    assert tables[0].dialect == ("semicolon-separated with decimal commas (R's write.csv2), "
                                 "R's row names left out")
    assert tables[1].dialect == "comma-separated, R's row names left out"
    result = cli("data", tmp_path / "r2.csv", "--target", "art", "--data-option", "dropna=true")
    assert result.exit_code == 0, result.output
    assert "  note: read as semicolon-separated with decimal commas (R's write.csv2), R's row " \
           "names left out" in result.output.splitlines()


def test_regression_run_end_to_end_and_the_saved_model_takes_raw_columns(houses, tmp_path, cli):
    result = cli("train", "mlp", "--dataset", houses, "--target", "price", "--epochs", "20",
                 "--batch-size", "16", "--set", "units=[32]", "--learning-rate", "0.05",
                 "--runs-dir", tmp_path,
                 "--name", "houses", "--data-option", "dropna=false")
    assert result.exit_code == 0, result.output
    run = labkit.load_run(tmp_path / "houses")
    assert run.config["data_options"] == {"target": "price", "dropna": False}
    result = cli("evaluate", run.path)
    assert result.exit_code == 0, result.output
    report = json.loads(run.file("evaluation.json").read_text())
    assert report["r2"] > 0.8  # the standardised features make this quick to learn
    model = keras.models.load_model(run.file(layout.MODEL))
    assert [layer.name for layer in model.layers[:2]] == ["raw_inputs", "standardization"]
    x_test, y_test = labkit.data.load(str(houses), options={"target": "price"}).test
    predicted = model.predict(x_test, verbose=0)  # raw columns in, prices out
    assert float(np.abs(predicted - y_test).mean()) == pytest.approx(report["mae"], rel=1e-5)


def test_multilabel_run_from_two_target_columns(houses, tmp_path):
    path = with_labels(houses, ["cheap", "old"])
    run = labkit.train("mlp", dataset=str(path), epochs=3, units=[8],
                       data_options={"target": ["cheap", "old"]}, runs_dir=str(tmp_path),
                       name="m", echo=lambda _: None)
    report = labkit.evaluate(run)
    assert report["task"] == "multilabel" and list(report["per_label"]) == ["cheap", "old"]


def test_csv_task_errors_on_the_command_line(cli, houses, tmp_path):
    result = cli("train", "mlp", "--dataset", houses, "--target", "price", "--task", "binary",
                 "--runs-dir", tmp_path / "runs")
    assert error_line(result) == (f"Error: --task binary does not fit dataset '{houses}', a "
                                  "regression task with 1 target(s).")
    result = cli("train", "mlp", "--dataset", houses, "--runs-dir", tmp_path / "runs")
    assert error_line(result).startswith("Error: Name the column to predict: --target COLUMN")
    assert not (tmp_path / "runs").exists()


def test_labkit_data_describes_a_csv(cli, houses):
    path = with_labels(houses, "kind")
    result = cli("data", path, "--target", "kind")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == (f"{path}: csv, task binary, input shape (6,), 2 classes, features "
                        "standardised in the model")
    assert lines[1].startswith("  train ") and "flat: " in lines[1] and "villa: " in lines[1]


def test_the_csv_is_read_once_while_unchanged(houses):
    table.read(str(houses), {"target": "price"})
    before = table._read.cache_info().hits
    table.read(str(houses), {"target": "price"})
    assert table._read.cache_info().hits == before + 1


def test_huge_csv_files_are_refused_before_they_are_read(tmp_path, cli):
    big = tmp_path / "big.csv"
    with open(big, "wb") as f:  # a sparse 10 GiB file: nothing is written, nothing read
        f.write(b"a,b,y\n")
        f.truncate(10 * 2**30)
    assert error_line(cli("data", big, "--target", "y")) == (
        f"Error: {big} is 10.0 GiB; labkit reads CSV files of up to 1 GiB into memory. Sample "
        "or split it, or save it as an .npz.")
    wide = tmp_path / "wide.csv"
    wide.write_text(",".join(f"c{i}" for i in range(table.MAX_COLUMNS + 5)) + "\n1\n")
    assert error_line(cli("data", wide, "--target", "c0")) == (
        f"Error: {wide} has {table.MAX_COLUMNS + 5:,} columns; labkit reads CSV files of up to "
        f"{table.MAX_COLUMNS:,} columns. Select the columns you need first.")
