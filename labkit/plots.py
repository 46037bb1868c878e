"""Plots of runs and labs, drawn on ``matplotlib.figure.Figure`` objects (no pyplot, so a
notebook's backend is never switched and no screen is needed) and written atomically as PNG."""

from __future__ import annotations

import functools
import io
from pathlib import Path

from labkit._lazy import lazy_import
from labkit.files import atomic_path
from labkit.layout import EPOCH, LEARNING_RATE

np = lazy_import("numpy")  # imported on first use: `labkit lab list` never pays for them
pd = lazy_import("pandas")

GRID_LIMIT, GRID_SIZE = 6.0, 100  # the Playground's [-6, 6]², 100 × 100
PLAYGROUND_COLOURS = ["#f59322", "#e8eaeb", "#0877bd"]  # orange (−1) → white → blue (+1)


@functools.cache
def _shown_figure():
    from matplotlib.figure import Figure

    class ShownFigure(Figure):
        """A Figure that a notebook (Jupyter, VS Code, IPython) draws inline by itself, as
        PNG: no pyplot, no ``plt.show()``, no backend switched."""

        def _repr_png_(self) -> bytes:
            buffer = io.BytesIO()
            self.savefig(buffer, format="png", dpi=100, bbox_inches="tight", pad_inches=0.1)
            return buffer.getvalue()

    return ShownFigure


def figure(ncols: int = 1, nrows: int = 1, size=(4.5, 3.6)):
    """A Figure with a ``nrows`` × ``ncols`` grid of axes, each ``size`` inches: ``(fig, axes)``.
    Returned to a notebook, the figure shows inline."""
    fig = _shown_figure()(figsize=(size[0] * ncols, size[1] * nrows))
    return fig, fig.subplots(nrows, ncols, squeeze=False)


def save(fig, path: str | Path, tight: bool = True, crop: bool = True) -> None:
    """Write ``fig`` as a PNG, atomically; nothing cut off at its edges (titles, rotated
    labels, colour bars: ``crop`` grows the saved area to hold them, drawing the figure
    twice). ``tight``: lay it out first (``tight_layout``)."""
    if tight:
        fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100, **({"bbox_inches": "tight", "pad_inches": 0.1} if crop
                                      else {}))


def playground_colormap():
    from matplotlib.colors import LinearSegmentedColormap

    return LinearSegmentedColormap.from_list("playground", PLAYGROUND_COLOURS)


def curves_figure(history: pd.DataFrame, title: str | None = None):
    """The loss and each metric per epoch (accuracy, AUC; a regression's MAE, in the
    target's units), training vs validation, side by side; the learning rate too when a
    schedule changed it. ``title``: the figure's (a run's name and recipe)."""
    from labkit.layout import PHASE, SECONDS

    metrics = ["loss"] if "loss" in history else []
    metrics += [m for m in history.columns if m not in (EPOCH, PHASE, SECONDS, LEARNING_RATE,
                                                        "loss") and not m.startswith("val_")]
    if LEARNING_RATE in history and history[LEARNING_RATE].nunique() > 1:
        metrics.append(LEARNING_RATE)
    fig, axes = figure(max(1, len(metrics)), size=(5, 3.6))
    column = {name: history[name].to_numpy(dtype=float) for name in history.columns
              if name != PHASE}  # plain arrays: matplotlib draws pandas' Series far slower
    for ax, metric in zip(axes[0], metrics, strict=False):
        label = "used in the epoch" if metric == LEARNING_RATE else "training"
        ax.plot(column[EPOCH], column[metric], "o-", label=label, markersize=3)
        if f"val_{metric}" in history:
            ax.plot(column[EPOCH], column[f"val_{metric}"], "o-", label="validation",
                    markersize=3)
        shown = {LEARNING_RATE: "learning rate", "mae": "mean absolute error",
                 "auc": "AUC"}.get(metric, metric)
        if metric == "loss" and "mae" in history:  # regression: labkit.layers
            shown = "loss (squared error in target std's)"
        ax.set(xlabel="epoch", ylabel=shown, title=shown,
               yscale="log" if metric == LEARNING_RATE else "linear")
        ax.grid(alpha=0.3)
        integer_epochs(ax)
        ax.legend()
    if title:
        fig.suptitle(title)
    _margins(fig, len(axes[0]), size=(5, 3.6))
    return fig


def _margins(fig, panels: int, size: tuple[float, float]) -> None:
    """Fixed margins for a row of ``panels`` axes, each ``size`` inches, that hold tick labels,
    axis labels, titles and a figure title: what ``tight_layout`` would find, without drawing
    the figure to measure it (that doubles the time to write the picture)."""
    left, right, gap, bottom, top = 0.85, 0.2, 0.95, 0.55, 0.75  # inches
    width, height = size[0] * panels, size[1]
    axes_width = (width - left - right - (panels - 1) * gap) / panels
    fig.subplots_adjust(left=left / width, right=1 - right / width, bottom=bottom / height,
                        top=1 - top / height, wspace=gap / axes_width)


def curves(history: pd.DataFrame, path: str | Path, title: str | None = None) -> None:
    """:func:`curves_figure` written to ``path``."""
    save(curves_figure(history, title), path, tight=False, crop=False)  # laid out already


def playground_output(predictions, task: str = "classification"):
    """A 2-D model's predictions ``(n, units)`` as the Playground shows its output: 2·P(blue) − 1
    in [−1, 1] for classes (P(blue) is the second softmax unit, or the one unit of a binary or
    exact head), the value itself for regression."""
    predictions = np.asarray(predictions)
    return predictions[:, 0] if task == "regression" else 2 * predictions[:, -1] - 1


def boundary_grid(model, task: str = "classification", limit: float = GRID_LIMIT,
                  size: int = GRID_SIZE):
    """The model's output over a grid, as :func:`playground_output` shows it."""
    axis = np.linspace(-limit, limit, size, dtype="float32")
    xx, yy = np.meshgrid(axis, axis)
    points = np.stack([xx.ravel(), yy.ravel()], axis=1)
    predictions = model.predict(points, batch_size=4096, verbose=0)
    return xx, yy, playground_output(predictions, task).reshape(xx.shape)


def decision_boundary(model, loaded, path: str | Path) -> None:
    """Output over [−6, 6]², orange (−1) → white → blue (+1), with training (white edges) and
    test (black edges) points coloured by label (or target, for regression), written to
    ``path``."""
    cmap = playground_colormap()
    regression = loaded.spec.task == "regression"
    xx, yy, output = boundary_grid(model, loaded.spec.task)
    fig, axes = figure(size=(4.6, 4.2))
    ax = axes[0, 0]
    mesh = ax.contourf(xx, yy, output, levels=np.linspace(-1, 1, 21), cmap=cmap, extend="both")
    for (x, y), edge in ((loaded.train, "white"), (loaded.test, "black")):
        ax.scatter(x[:, 0], x[:, 1], c=np.ravel(y), cmap=cmap, vmin=-1 if regression else 0,
                   vmax=1, s=14, linewidths=0.6, edgecolors=edge)
    ax.set(xlim=(-GRID_LIMIT, GRID_LIMIT), ylim=(-GRID_LIMIT, GRID_LIMIT), aspect="equal",
           xlabel="x1", ylabel="x2", title=f"{loaded.spec.name} (edges: white train, black test)")
    bar = fig.colorbar(mesh, ax=ax, ticks=[-1, 0, 1])
    bar.set_label("network output" if regression else
                  "network output: 2·P(blue) − 1  (−1 orange, +1 blue)")
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


def _tiles(count: int, columns: int, size):
    """A grid of ``count`` axes without ticks, ``columns`` wide: ``(fig, axes in order)``."""
    columns = min(columns, count)
    fig, axes = figure(columns, -(-count // columns), size=size)
    for ax in axes.ravel():
        ax.axis("off")
    return fig, axes.ravel()


def heatmaps(images, maps, titles: list[str], path: str | Path, columns: int = 4) -> None:
    """A contact sheet: each image with its heatmap laid over it (jet, 40 %), and one colour
    bar for all: 0 (no evidence for the class) to 1 (the map's strongest)."""
    fig, axes = _tiles(len(images), columns, (3, 3.2))
    shown = None
    for ax, image, heat, title in zip(axes, images, maps, titles, strict=False):
        ax.imshow(_displayable(image), cmap="gray" if image.shape[-1] == 1 else None)
        shown = ax.imshow(heat, cmap="jet", alpha=0.4, vmin=0, vmax=1)
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    if shown is not None:
        bar = fig.colorbar(shown, ax=list(axes), shrink=0.8, pad=0.02)
        bar.set_label("Grad-CAM: evidence for the class (1 = strongest)", fontsize=8)
    save(fig, path, tight=False)


def channel_grid(maps, title: str, path: str | Path, columns: int = 8,
                 label: str = "channel", values: str = "activation") -> None:
    """Every channel of ``maps`` (height, width, channels) — or every pattern of ``maps``
    (count, height, width, channels) — as a grid of small images, each named (``channel 3``,
    ``filter 3``), with a colour bar for ``values``: each tile is scaled from its own lowest
    value (0) to its highest (1)."""
    tiles = np.moveaxis(maps, -1, 0) if maps.ndim == 3 else maps
    fig, axes = _tiles(len(tiles), columns, (1.4, 1.6))
    shown = None
    for index, (ax, tile) in enumerate(zip(axes, tiles, strict=False)):
        shown = ax.imshow(_displayable(tile), cmap="viridis" if tile.ndim == 2 else None,
                          vmin=0, vmax=1)
        ax.set_title(f"{label} {index}", fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    if shown is not None and np.ndim(shown.get_array()) == 2:  # grey tiles: viridis
        bar = fig.colorbar(shown, ax=list(axes), shrink=0.8, pad=0.02)
        bar.set_label(f"{values}, per tile: its lowest (0) to its highest (1)", fontsize=8)
    save(fig, path, tight=False)


def _displayable(image):
    """An image as imshow takes it: 2-D, or RGB in [0, 1]."""
    image = np.asarray(image, dtype="float32")
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    low, high = float(image.min()), float(image.max())
    return (image - low) / (high - low) if high > low else image * 0


def confusion(matrix, class_names, path: str | Path) -> None:
    """The confusion matrix twice: counts, and each row divided by its total (recall on the
    diagonal), with scikit-learn's display."""
    from sklearn.metrics import ConfusionMatrixDisplay

    matrix = np.asarray(matrix)
    rows = np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    size = max(4.0, 0.45 * len(class_names) + 2)
    fig, axes = figure(2, size=(size, size))
    for ax, values, title, fmt in ((axes[0, 0], matrix, "counts", "d"),
                                   (axes[0, 1], matrix / rows, "share of the true class", ".2f")):
        ConfusionMatrixDisplay(values, display_labels=list(class_names)).plot(
            ax=ax, values_format=fmt, colorbar=False, xticks_rotation=45)
        ax.set_title(title)
    save(fig, path)


def top_losses(images, titles: list[str], path: str | Path, columns: int = 3) -> None:
    """The examples the model gets most wrong, with their titles (true, predicted, p)."""
    fig, axes = _tiles(len(images), columns, (2.6, 2.8))
    for ax, image, title in zip(axes, images, titles, strict=False):
        ax.imshow(_displayable(image), cmap="gray" if np.asarray(image).shape[-1] == 1 else None)
        ax.set_title(title, fontsize=8)
    save(fig, path)


def integer_epochs(ax) -> None:
    """Whole numbers only on ``ax``'s x axis (epochs, steps)."""
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def compare_curves(curves: list[tuple[str, pd.DataFrame]], metric: str,
                   path: str | Path) -> Path:
    """Several runs' ``metric`` per epoch in one PNG (:func:`compare_figure`)."""
    save(compare_figure(curves, metric), path)
    return Path(path)


def compare_figure(curves: list[tuple[str, pd.DataFrame]], metric: str):
    """Several runs' ``metric`` per epoch: training dashed, validation solid, each epoch a
    point, one colour and one legend entry per run."""
    fig, axes = figure(size=(7, 4.2))
    ax = axes[0][0]
    from matplotlib import colormaps

    colours = colormaps["tab10" if len(curves) <= 10 else "viridis"]
    for i, (label, history) in enumerate(curves):
        colour = colours(i if len(curves) <= 10 else i / max(1, len(curves) - 1))
        # markers: a run of one epoch is a point, which a line alone would not draw
        if f"val_{metric}" in history:
            ax.plot(history[EPOCH], history[f"val_{metric}"], "o-", color=colour, label=label,
                    markersize=3)
        if metric in history:
            ax.plot(history[EPOCH], history[metric], "o--", color=colour, alpha=0.7,
                    label=None if f"val_{metric}" in history else label, markersize=3)
    ax.set(xlabel="epoch", ylabel=metric,
           title=f"{metric}: validation (solid), training (dashed)")
    integer_epochs(ax)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return fig


def log_spaced(values) -> bool:
    """Whether numbers are better read on a log axis: all positive, and spanning a factor of
    10 or more, or spaced by a constant factor (1e-3, 1e-2, 1e-1; batch sizes 16, 32, 64)."""
    values = np.unique(np.asarray(pd.to_numeric(pd.Series(values), errors="coerce"), float))
    values = values[np.isfinite(values)]
    if len(values) < 2 or values.min() <= 0:
        return False
    ratios = values[1:] / values[:-1]
    return bool(values.max() / values.min() >= 10 or
                (len(values) >= 3 and ratios.min() > 1.5 and ratios.max() / ratios.min() < 1.1))


def sweep_points(results: pd.DataFrame, swept: dict, metric: str, path: str | Path) -> Path:
    """A sweep's ``metric`` against each swept option (``swept``: name → scale: ``log`` for a
    log-uniform range, ``linear``, ``auto`` for a grid of numbers — a log axis when they are
    log-spaced (:func:`log_spaced`: learning rates 1e-3, 1e-2, 1e-1) — or the list of a
    choice's values), one panel per option. Anything not numeric (``[16]``, ``[32,16]``,
    names) is drawn as categories in the listed order."""
    fig, axes = figure(len(swept), size=(4, 3.4))
    done = results[results[metric].notna()]
    for ax, (name, scale) in zip(axes[0], swept.items(), strict=True):
        values = done[name]
        if not pd.api.types.is_numeric_dtype(values):
            listed = scale if isinstance(scale, list) else list(results[name])
            categories = list(dict.fromkeys(str(v) for v in listed))
            x = [categories.index(str(v)) for v in values]
            ax.set_xticks(range(len(categories)), categories, rotation=30, fontsize=8)
        else:
            x = values
            if scale == "log" or (scale == "auto" and log_spaced(results[name])):
                ax.set_xscale("log")
        ax.scatter(x, done[metric], s=25)
        ax.set(xlabel=name, ylabel=metric, title=f"{metric} by {name}")
        ax.grid(alpha=0.3)
    save(fig, path)
    return Path(path)
