"""What a convnet sees (lecture topic 16, CheXNet's heatmaps): Grad-CAM on a task whose evidence
has a known place."""

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
    lab,
    save,
)

np = lazy_import("numpy")
pd = lazy_import("pandas")

SIZE, PATCH = 16, 4  # 16×16 noise images with one bright 4×4 patch
SHOWN = 8  # test images whose pixels and heatmaps the CSV keeps for the plot


def patch_images(n: int, seed: int):
    """Noise images with a bright patch somewhere in one quadrant; the quadrant (0 top-left,
    1 top-right, 2 bottom-left, 3 bottom-right) is the class."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 0.25, (n, SIZE, SIZE, 1)).astype("float32")
    y = rng.integers(0, 4, n)
    half = SIZE // 2
    for image, label in zip(x, y, strict=True):
        row = half * (label // 2) + rng.integers(1, half - PATCH)
        col = half * (label % 2) + rng.integers(1, half - PATCH)
        image[row:row + PATCH, col:col + PATCH] = 1.0
    return x, y


def _seeing_verdict(f: pd.DataFrame) -> Finding:
    examples = f[f["kind"] == "example"]
    accuracy = (examples["true"] == examples["predicted"]).mean()
    hits = examples["hit"].mean()
    return finding(f"Grad-CAM's maximum fell in the class's quadrant for {hits:.0%} of "
                   f"{len(examples)} test images (chance: 25 %); test accuracy {accuracy:.2f}",
                   accuracy >= 0.9 and hits >= 0.75, hits - 0.25,
                   "the heatmap's peak is in the right quadrant {} more often than chance",
                   noise=accuracy_noise(0.25, len(examples), compared=1))


def _seeing_plot(f: pd.DataFrame, path) -> None:
    fig, axes = figure(SHOWN // 2 + 1, 2, size=(2.6, 2.6))
    examples = f[f["kind"] == "example"]
    rate = examples.groupby("true")["hit"].mean()
    axes[0, 0].bar([str(int(q)) for q in rate.index], rate.values)
    axes[0, 0].set(title="peak in the class's quadrant", xlabel="class (quadrant)",
                   ylim=(0, 1))
    axes[1, 0].axis("off")
    for k in range(SHOWN):
        ax = axes[k % 2, k // 2 + 1]
        for kind, style in (("pixel", {"cmap": "gray"}),
                            ("heat", {"cmap": "jet", "alpha": 0.45, "vmin": 0, "vmax": 1})):
            cells = f[(f["kind"] == kind) & (f["example"] == k)]
            grid = np.zeros((SIZE, SIZE))
            grid[cells["i"].astype(int), cells["j"].astype(int)] = cells["value"]
            ax.imshow(grid, **style)
        row = examples[examples["example"] == k].iloc[0]
        ax.set_title(f"class {int(row['true'])}, {'hit' if row['hit'] else 'miss'}", fontsize=9)
        ax.axis("off")
    save(fig, path)


@lab("what-convnets-see", order=19, topic=16, detail="CheXNet's heatmaps",
     claim="A trained convnet's evidence is localised: its Grad-CAM heatmap peaks where the "
           "class signal is.", seconds=7, verdict=_seeing_verdict, plot=_seeing_plot)
def what_convnets_see(quick: bool, seed: int) -> pd.DataFrame:
    from labkit import explain
    from labkit.data import pipeline

    x, y = patch_images(600 if quick else 1500, seed)
    n_test = 120
    with seeding.seeded(seed):
        model = compiled(build("cnn", num_classes=4, input_shape=(SIZE, SIZE, 1), filters=[8, 16]))
    train = pipeline.training_batches((x[n_test:], y[n_test:]), 32, seed=seed)
    model.fit(train, epochs=4 if quick else 8, verbose=0, shuffle=False)  # batches reshuffle
    maps, _, predicted = explain.gradcam(model, x[:n_test])  # the last conv layer
    rows = []
    half = SIZE // 2
    for k, heat in enumerate(maps):
        i, j = np.unravel_index(heat.argmax(), heat.shape)
        rows.append({"kind": "example", "example": k, "true": int(y[k]),
                     "predicted": int(predicted[k]), "peak_row": int(i), "peak_col": int(j),
                     "hit": int((i >= half) * 2 + (j >= half) == y[k])})
        if k < SHOWN:
            for (a, b), value in np.ndenumerate(x[k, ..., 0]):
                rows.append({"kind": "pixel", "example": k, "i": a, "j": b,
                             "value": float(value)})
            for (a, b), value in np.ndenumerate(heat):
                rows.append({"kind": "heat", "example": k, "i": a, "j": b,
                             "value": float(value)})
    return pd.DataFrame(rows)
