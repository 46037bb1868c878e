"""Lab on feature engineering with the TensorFlow Playground's datasets (lecture topic 0)."""

from __future__ import annotations

from labkit import seeding
from labkit._lazy import lazy_import
from labkit.labs._kit import (
    Finding,
    accuracy_noise,
    build,
    compiled,
    figure,
    finding,
    fit,
    lab,
    save,
)

np = lazy_import("numpy")
pd = lazy_import("pandas")

ENGINEERED = {"circle": ["x1^2", "x2^2"], "xor": ["x1*x2"],
              "spiral": ["x1", "x2", "x1^2", "x2^2", "x1*x2", "sin(x1)", "sin(x2)"]}
HIDDEN = {"circle": [], "xor": [], "spiral": [8, 8]}  # the same net for both feature sets
GRID = 30


def _verdict(f: pd.DataFrame) -> Finding:
    scores = f[f["kind"] == "test"].pivot_table(index="dataset", columns="features",
                                                values="value", sort=False)
    parts = ", ".join(f"{name} {row['raw']:.2f} → {row['engineered']:.2f}"
                      for name, row in scores.iterrows())
    gains = scores["engineered"] - scores["raw"]
    least = gains.idxmin()
    tested = int(((f["kind"] == "point") & (f["dataset"] == least)
                  & (f["features"] == "raw")).sum())
    return finding(f"test accuracy with raw x1, x2 → engineered features (no hidden layer for "
                   f"circle and xor, 8-8 for the spiral): {parts}; better on "
                   f"{int((gains > 0).sum())} of {len(scores)}", (gains > 0).all(), gains[least],
                   f"the smallest gain ({least}) is {{}} test accuracy",
                   noise=accuracy_noise(scores.loc[least].mean(), tested))


def _plot(f: pd.DataFrame, path) -> None:
    from labkit.plots import playground_colormap

    cmap = playground_colormap()
    datasets = list(dict.fromkeys(f["dataset"]))
    fig, axes = figure(len(datasets), 2, size=(3.4, 3.4))
    for col, name in enumerate(datasets):
        for row, features in enumerate(("raw", "engineered")):
            part = f[(f["dataset"] == name) & (f["features"] == features)]
            grid = part[part["kind"] == "grid"]
            size = int(np.sqrt(len(grid)))
            ax = axes[row, col]
            ax.imshow(grid["value"].to_numpy().reshape(size, size), origin="lower", cmap=cmap,
                      vmin=-1, vmax=1, extent=(-6, 6, -6, 6))
            points = part[part["kind"] == "point"]
            ax.scatter(points["x1"], points["x2"], c=points["value"], cmap=cmap, vmin=0, vmax=1,
                       s=8, edgecolors="k", linewidths=0.3)
            score = part[part["kind"] == "test"]["value"].iloc[0]
            ax.set(xticks=[], yticks=[], title=f"{name}, {features}: {score:.2f}")
    save(fig, path)


@lab("playground", order=18, topic=0, detail="feature engineering",
     claim="With the right engineered features (x1², x2² for the circle, x1·x2 for xor, sines "
           "for the spiral) the same small net separates what raw x1, x2 cannot — without "
           "any hidden layer for the circle and xor.",
     seconds=164, verdict=_verdict, plot=_plot)
def playground(quick: bool, seed: int) -> pd.DataFrame:
    from labkit import data

    axis = np.linspace(-6, 6, GRID, dtype="float32")
    xx, yy = np.meshgrid(axis, axis)
    grid = np.stack([xx.ravel(), yy.ravel()], axis=1)
    rows = []
    for name, engineered in ENGINEERED.items():
        loaded = data.load(name, validation_split=0.0)
        (x, y), (x_test, y_test) = loaded.train, loaded.test
        for features, chosen in (("raw", ["x1", "x2"]), ("engineered", engineered)):
            with seeding.seeded(seed):
                model = compiled(build("playground", num_classes=2, input_shape=(2,),
                                      features=chosen, hidden=HIDDEN[name]), "sgd", 0.03)
            fit(model, {"x_train": x, "y_train": y, "x_val": x, "y_val": y},
                epochs=8 if quick else 200, batch_size=10)
            score = float((model.predict(x_test, verbose=0).argmax(1) == y_test).mean())
            output = 2 * model.predict(grid, verbose=0)[:, 1] - 1
            base = {"dataset": name, "features": features}
            rows.append({**base, "kind": "test", "x1": np.nan, "x2": np.nan, "value": score})
            rows += [{**base, "kind": "grid", "x1": a, "x2": b, "value": v}
                     for (a, b), v in zip(grid, output, strict=True)]
            rows += [{**base, "kind": "point", "x1": a, "x2": b, "value": float(label)}
                     for (a, b), label in zip(x_test, y_test, strict=True)]
    return pd.DataFrame(rows)
