"""The value range a run's inputs had, and a warning when new inputs fall clearly outside it.

A model trained on digits (pixels 0..16) answers 1.0000 for every PNG (pixels 0..255) without a
word; a run therefore records the raw range of its training inputs per channel (images,
sequences) or per feature (CSV columns) in config.json's ``data_spec.input_range``, and
``labkit predict`` and ``labkit explain`` check what they are given against it.
"""

from __future__ import annotations

from labkit._lazy import lazy_import

np = lazy_import("numpy")

# New values further outside the trained range than this fraction of its width (per channel or
# feature) are "clearly outside": rounding, a brighter photo or a new house price are not.
MARGIN = 0.5


def observed(x) -> dict[str, list[float]]:
    """``{"min": [...], "max": [...]}`` of raw inputs ``x`` per channel (the last axis)."""
    x = np.asarray(x)
    flat = x.reshape(-1, x.shape[-1]) if x.ndim > 1 else x.reshape(-1, 1)
    return {"min": flat.min(axis=0).astype(float).tolist(),
            "max": flat.max(axis=0).astype(float).tolist()}


def outside(recorded: dict | None, x, dataset: str = "") -> str | None:
    """The warning (without its ``warning:`` prefix) when raw inputs ``x`` fall clearly outside
    the ``recorded`` range (:func:`observed` of the training inputs); None when they do not, or
    when nothing was recorded (a run from before, a streamed dataset)."""
    if not recorded or len(x) == 0:
        return None
    low, high = np.asarray(recorded["min"], float), np.asarray(recorded["max"], float)
    now = observed(x)
    new_low, new_high = np.asarray(now["min"]), np.asarray(now["max"])
    if new_low.shape != low.shape:
        return None  # another shape is refused elsewhere, with its own message
    width = np.maximum(high - low, np.maximum(np.abs(high), 1.0) * 1e-3)
    beyond = (new_low < low - MARGIN * width) | (new_high > high + MARGIN * width)
    if not beyond.any():
        return None
    source = f" ({dataset})" if dataset else ""
    where = ""
    if len(low) > 1:
        unit = "features" if np.ndim(x) == 2 else "channels"
        where = f" in {int(beyond.sum())} of {len(low)} {unit}"
    return (f"inputs are {_span(new_low[beyond].min(), new_high[beyond].max())}{where}, this "
            f"run was trained on {_span(low[beyond].min(), high[beyond].max())}{source}: scale "
            f"them to that range, or train on inputs like them. The answers may be saturated.")


def warn(message: str) -> None:
    """The default for ``warn=`` arguments: a Python warning (a notebook shows it)."""
    import warnings

    warnings.warn(message, UserWarning, stacklevel=3)


def _span(low: float, high: float) -> str:
    return f"{low:.4g}..{high:.4g}"
