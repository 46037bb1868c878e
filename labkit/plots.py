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
    """Loss and accuracy per epoch, training vs validation, side by side."""
    plt = _pyplot()
    metrics = [m for m in ("loss", "accuracy") if m in history]
    fig, axes = plt.subplots(1, len(metrics), figsize=(5 * len(metrics), 3.6), squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        ax.plot(history["epoch"], history[metric], "o-", label="training", markersize=3)
        if f"val_{metric}" in history:
            ax.plot(history["epoch"], history[f"val_{metric}"], "o-", label="validation",
                    markersize=3)
        ax.set(xlabel="epoch", ylabel=metric, title=metric)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100)
    plt.close(fig)
