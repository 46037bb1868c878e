"""Datasets by name: the catalog, one module per source, and the input pipeline.

    from labkit import data
    loaded = data.load("digits")                  # Data: spec + train / val / test splits
    x, y = data.pipeline.arrays(loaded.test, prep=loaded.spec.preprocessing)

- ``base``: :class:`DatasetSpec`, :class:`Data`, the fixed stratified split;
- sources: ``bundled`` (scikit-learn's digits), ``playground_sets`` and ``control_charts``
  (generated), ``tfds`` (tensorflow-datasets);
- ``catalog``: name → source, :func:`load`, :func:`catalog_spec`;
- ``pipeline``: split → what the model is fed, everywhere.
"""

from labkit.data import pipeline
from labkit.data.base import Data, DatasetSpec, numbered_classes
from labkit.data.catalog import (
    DATASETS,
    OFFLINE,
    PLAYGROUND_NAMES,
    catalog_spec,
    check_name,
    load,
    summarize,
)

__all__ = ["DATASETS", "OFFLINE", "PLAYGROUND_NAMES", "Data", "DatasetSpec", "catalog_spec",
           "check_name", "load", "numbered_classes", "pipeline", "summarize"]
