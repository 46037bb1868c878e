"""Plots written into run directories (PNG, no screen needed)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from labkit.runs import atomic_path


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def curves(history: pd.DataFrame, path: str | Path) -> None:
    """Loss and accuracy per epoch, training vs validation, side by side; the learning rate
    too when a schedule changed it."""
    plt = _pyplot()
    metrics = [m for m in ("loss", "accuracy") if m in history]
    if "lr" in history and history["lr"].nunique() > 1:
        metrics.append("lr")
    fig, axes = plt.subplots(1, len(metrics), figsize=(5 * len(metrics), 3.6), squeeze=False)
    for ax, metric in zip(axes[0], metrics, strict=True):
        label = "used in the epoch" if metric == "lr" else "training"
        ax.plot(history["epoch"], history[metric], "o-", label=label, markersize=3)
        if f"val_{metric}" in history:
            ax.plot(history["epoch"], history[f"val_{metric}"], "o-", label="validation",
                    markersize=3)
        ax.set(xlabel="epoch", ylabel=metric, title=metric,
               yscale="log" if metric == "lr" else "linear")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100)
    plt.close(fig)


BOUNDARY = "decision_boundary.png"
GRID_LIMIT, GRID_SIZE = 6.0, 100  # the Playground's [-6, 6]², 100 × 100


def boundary_grid(model, limit: float = GRID_LIMIT, size: int = GRID_SIZE):
    """The model's output over a grid, as the Playground shows it: 2·P(blue) − 1 in [−1, 1]."""
    import numpy as np

    axis = np.linspace(-limit, limit, size, dtype="float32")
    xx, yy = np.meshgrid(axis, axis)
    points = np.stack([xx.ravel(), yy.ravel()], axis=1)
    probabilities = model.predict(points, batch_size=4096, verbose=0)
    return xx, yy, (2 * probabilities[:, 1] - 1).reshape(xx.shape)


def decision_boundary(model, loaded, path: str | Path, ax=None, title: str | None = None) -> None:
    """Output over [−6, 6]², orange (−1) → white → blue (+1), with training (filled) and test
    (outlined) points; written to ``path`` unless an axis ``ax`` is given to draw into."""
    from matplotlib.colors import LinearSegmentedColormap

    plt = _pyplot()
    cmap = LinearSegmentedColormap.from_list("playground", ["#f59322", "#e8eaeb", "#0877bd"])
    xx, yy, output = boundary_grid(model)
    own = ax is None
    if own:
        fig, ax = plt.subplots(figsize=(4.6, 4.2))
    import numpy as np

    mesh = ax.contourf(xx, yy, output, levels=np.linspace(-1, 1, 21), cmap=cmap, extend="both")
    for (x, y), style in ((loaded.train, {"edgecolors": "white"}),
                          (loaded.test, {"edgecolors": "black"})):
        ax.scatter(x[:, 0], x[:, 1], c=y, cmap=cmap, vmin=0, vmax=1, s=14, linewidths=0.6,
                   **style)
    ax.set(xlim=(-GRID_LIMIT, GRID_LIMIT), ylim=(-GRID_LIMIT, GRID_LIMIT), aspect="equal",
           title=title or f"{loaded.spec.name} (edges: white train, black test)")
    if own:
        fig.colorbar(mesh, ax=ax, ticks=[-1, 0, 1])
        fig.tight_layout()
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=100)
        plt.close(fig)
