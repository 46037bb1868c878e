"""labkit's defaults against a scikit-learn baseline on real data, on the same splits.

    .venv/bin/python bench/baselines.py [--seeds 3]

Writes scikit-learn's bundled real datasets as CSV files (as a student would export them), trains
``labkit train mlp --dataset FILE.csv --target target`` on the defaults, and fits a linear
baseline on exactly the same training split (features standardised): logistic regression for
classes, ridge regression for quantities. Reports the test metric of each, labkit's as the median
over seeds with its range. Digits appear twice: as classes, and with ``--task regression`` (the
digit read as a number, an integer target).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

import numpy as np

# (name, writer, task option, metric, lower is better)
SETS = (
    ("breast cancer", "load_breast_cancer", None, "accuracy", False),
    ("digits", "load_digits", None, "accuracy", False),
    ("diabetes", "load_diabetes", None, "mae", True),
    ("digits as numbers", "load_digits", "regression", "mae", True),
)


def write_csv(loader: str, path: Path) -> Path:
    import sklearn.datasets

    frame = getattr(sklearn.datasets, loader)(as_frame=True).frame
    frame.to_csv(path, index=False)
    return path


def baseline(path: Path, task: str | None, metric: str) -> float:
    """The linear baseline's test metric on labkit's own split of ``path``."""
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.metrics import accuracy_score, mean_absolute_error
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from labkit import data

    loaded = data.load(str(path), options={"target": "target"}, task=task)
    (x, y), (xt, yt) = loaded.train, loaded.test
    if metric == "accuracy":
        model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000)).fit(x, y)
        return float(accuracy_score(yt, model.predict(xt)))
    model = make_pipeline(StandardScaler(), Ridge()).fit(x, y)
    return float(mean_absolute_error(yt, model.predict(xt)))


def labkit_metric(path: Path, task: str | None, metric: str, seed: int, runs: Path) -> float:
    import labkit

    options = {"task": task} if task else {}
    run = labkit.train("mlp", dataset=str(path), data_options={"target": "target"}, seed=seed,
                       runs_dir=str(runs), echo=lambda _: None, **options)
    return float(run.metrics[f"test_{metric}"])


def compare(seeds: int) -> list[dict]:
    """One row per dataset: the baseline's metric and labkit's over ``seeds`` seeds."""
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for name, loader, task, metric, lower in SETS:
            path = write_csv(loader, work / f"{loader}.csv")
            ours = [labkit_metric(path, task, metric, seed, work / "runs")
                    for seed in range(seeds)]
            rows.append({"dataset": name, "metric": metric, "lower_is_better": lower,
                         "baseline": baseline(path, task, metric), "labkit": ours})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    print("| dataset | test metric | scikit-learn linear | labkit mlp defaults, median "
          "(range) | labkit / baseline |")
    print("|---|---|---|---|---|")
    for row in compare(args.seeds):
        median = statistics.median(row["labkit"])
        print(f"| {row['dataset']} | {row['metric']} | {row['baseline']:.3f} | {median:.3f} "
              f"({min(row['labkit']):.3f}–{max(row['labkit']):.3f}) | "
              f"{median / row['baseline']:.2f} |")
    print(f"\n{len(row['labkit'])} seeds; numpy {np.__version__}")


if __name__ == "__main__":
    main()
