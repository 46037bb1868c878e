"""Plots of runs and labs, drawn on ``matplotlib.figure.Figure`` objects (no pyplot, so a
notebook's backend is never switched and no screen is needed) and written atomically as PNG."""

from __future__ import annotations

from pathlib import Path

from labkit._lazy import lazy_import
from labkit.files import atomic_path

np = lazy_import("numpy")  # imported on first use: `labkit lab list` never pays for them
pd = lazy_import("pandas")

BOUNDARY = "decision_boundary.png"
GRID_LIMIT, GRID_SIZE = 6.0, 100  # the Playground's [-6, 6]², 100 × 100
PLAYGROUND_COLOURS = ["#f59322", "#e8eaeb", "#0877bd"]  # orange (−1) → white → blue (+1)
LEARNING_RATE = "lr"  # history.csv's column: the learning rate each epoch started with


def figure(ncols: int = 1, nrows: int = 1, size=(4.5, 3.6)):
    """A Figure with a ``nrows`` × ``ncols`` grid of axes, each ``size`` inches: ``(fig, axes)``."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(size[0] * ncols, size[1] * nrows))
    return fig, fig.subplots(nrows, ncols, squeeze=False)


def save(fig, path: str | Path) -> None:
    """Write ``fig`` as a PNG, atomically."""
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100)


def playground_colormap():
    from matplotlib.colors import LinearSegmentedColormap

    return LinearSegmentedColormap.from_list("playground", PLAYGROUND_COLOURS)


def curves_figure(history: pd.DataFrame):
    """Loss and accuracy per epoch, training vs validation, side by side; the learning rate
    too when a schedule changed it."""
    metrics = [m for m in ("loss", "accuracy") if m in history]
    if LEARNING_RATE in history and history[LEARNING_RATE].nunique() > 1:
        metrics.append(LEARNING_RATE)
    fig, axes = figure(max(1, len(metrics)), size=(5, 3.6))
    for ax, metric in zip(axes[0], metrics, strict=False):
        label = "used in the epoch" if metric == LEARNING_RATE else "training"
        ax.plot(history["epoch"], history[metric], "o-", label=label, markersize=3)
        if f"val_{metric}" in history:
            ax.plot(history["epoch"], history[f"val_{metric}"], "o-", label="validation",
                    markersize=3)
        title = "learning rate" if metric == LEARNING_RATE else metric
        ax.set(xlabel="epoch", ylabel=title, title=title,
               yscale="log" if metric == LEARNING_RATE else "linear")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    return fig


def curves(history: pd.DataFrame, path: str | Path) -> None:
    """:func:`curves_figure` written to ``path``."""
    save(curves_figure(history), path)


def boundary_grid(model, limit: float = GRID_LIMIT, size: int = GRID_SIZE):
    """The model's output over a grid, as the Playground shows it: 2·P(blue) − 1 in [−1, 1]
    (P(blue) is the second softmax unit, or the one sigmoid unit of a binary head)."""
    axis = np.linspace(-limit, limit, size, dtype="float32")
    xx, yy = np.meshgrid(axis, axis)
    points = np.stack([xx.ravel(), yy.ravel()], axis=1)
    probabilities = model.predict(points, batch_size=4096, verbose=0)
    return xx, yy, (2 * probabilities[:, -1] - 1).reshape(xx.shape)


def decision_boundary(model, loaded, path: str | Path) -> None:
    """Output over [−6, 6]², orange (−1) → white → blue (+1), with training (white edges) and
    test (black edges) points, written to ``path``."""
    cmap = playground_colormap()
    xx, yy, output = boundary_grid(model)
    fig, axes = figure(size=(4.6, 4.2))
    ax = axes[0, 0]
    mesh = ax.contourf(xx, yy, output, levels=np.linspace(-1, 1, 21), cmap=cmap, extend="both")
    for (x, y), edge in ((loaded.train, "white"), (loaded.test, "black")):
        ax.scatter(x[:, 0], x[:, 1], c=y, cmap=cmap, vmin=0, vmax=1, s=14, linewidths=0.6,
                   edgecolors=edge)
    ax.set(xlim=(-GRID_LIMIT, GRID_LIMIT), ylim=(-GRID_LIMIT, GRID_LIMIT), aspect="equal",
           title=f"{loaded.spec.name} (edges: white train, black test)")
    fig.colorbar(mesh, ax=ax, ticks=[-1, 0, 1])
    save(fig, path)


SCATTER_POINTS = 2000  # a regression plot shows at most this many test examples


def predicted_vs_true(y_true, outputs, path: str | Path) -> None:
    """A regression run's predictions against the true targets (one panel per target), with
    the diagonal where they agree."""
    truth = np.asarray(y_true, dtype="float64").reshape(len(y_true), -1)
    predicted = np.asarray(outputs, dtype="float64").reshape(truth.shape)
    targets = truth.shape[1]
    fig, axes = figure(targets, size=(4.2, 4.0))
    for i, ax in enumerate(axes[0]):
        t, p = truth[:SCATTER_POINTS, i], predicted[:SCATTER_POINTS, i]
        low, high = float(min(t.min(), p.min())), float(max(t.max(), p.max()))
        ax.scatter(t, p, s=8, alpha=0.6)
        ax.plot([low, high], [low, high], color="grey", linewidth=1)
        ax.set(xlabel="true", ylabel="predicted",
               title="predicted vs true" + (f" (target {i})" if targets > 1 else ""))
        ax.grid(alpha=0.3)
    save(fig, path)
