"""The run directory's layout, in one place: every file name, history.csv's bookkeeping columns,
the keys config.json adds about the run, its ``format`` version, and :func:`migrate`, which
reads a run made by an older labkit as this one writes them.

A run directory ``runs/<name>/``::

    config.json      the resolved config, plus the RECORD_ONLY keys below ("format": FORMAT)
    history.csv      a row per finished epoch: epoch, [phase], lr, seconds, then Keras's logs
    metrics.json     status, epochs, best and final metrics (rewritten every epoch)
    model.keras      the trained model, taking raw inputs (config.json's "model_inputs")
    last.keras       checkpoint to resume from; best.keras: the best epoch's (labkit.checkpoint)
    samples.npz      up to 256 raw held-out examples, to check exports without the dataset
    curves.png       learning curves; decision_boundary.png for 2-D inputs
    evaluation.json  ``labkit evaluate``'s report, with confusion_matrix.csv/.png,
                     classification_report.txt, top_losses.png or predicted_vs_true.png
    export/FORMAT/   ``labkit export``: the model, labkit.json, parity.json, README.md
    explain/         ``labkit explain``'s pictures; tensorboard/: with --tensorboard
    .lock            the pid of the process training the run

A sweep folder holds ``sweep.json``, its trials (each a run directory), ``results.csv`` and
``sweep.png``. ``labkit compare`` draws ``compare.png`` in the first compared run's folder of
runs (``runs/``, or the sweep folder) unless told where.
"""

from __future__ import annotations

from labkit.errors import LabkitError

# config.json's "format": 1 (no key) is every run made before the field existed; 2 records it.
FORMAT = 2

CONFIG, HISTORY, METRICS = "config.json", "history.csv", "metrics.json"
MODEL, LAST, BEST = "model.keras", "last.keras", "best.keras"
MODELS = {"final": MODEL, "best": BEST, "last": LAST}  # predict's --model choices
SAMPLES = "samples.npz"
CURVES, BOUNDARY = "curves.png", "decision_boundary.png"
EVALUATION, CONFUSION, REPORT = "evaluation.json", "confusion_matrix.csv", \
    "classification_report.txt"
SCATTER, CONFUSION_PNG, TOP_LOSSES = "predicted_vs_true.png", "confusion_matrix.png", \
    "top_losses.png"
EXPORT, EXPLAIN, TENSORBOARD = "export", "explain", "tensorboard"  # folders
# In each export folder (export/FORMAT/), beside the model file labkit.formats names:
CARD, PARITY, MODEL_CARD = "labkit.json", "parity.json", "README.md"
LOCK = ".lock"

SWEEP, RESULTS, SWEEP_PICTURE = "sweep.json", "results.csv", "sweep.png"
COMPARE = "compare.png"  # `labkit compare`'s picture, beside the runs compared by default

# history.csv's columns besides Keras's logs: the epoch (from 1), the phase's name (recipes
# that train in phases), the learning rate the epoch started with, its wall time in seconds.
EPOCH, PHASE, LEARNING_RATE, SECONDS = "epoch", "phase", "lr", "seconds"
BOOKKEEPING = (EPOCH, PHASE, LEARNING_RATE, SECONDS)  # history columns that are not metrics

# config.json's keys about the run rather than its options; a config read back ignores them.
RECORD_ONLY = {"format", "versions", "created", "run", "derived", "model_inputs", "data_spec"}
# "model_inputs": RAW — model.keras starts with the dataset's preprocessing and takes raw values
# (uint8 pixels, CSV columns); PREPROCESSED — it takes preprocessed values (format-1 runs).
# Checkpoints (last.keras, best.keras) always take preprocessed values.
RAW, PREPROCESSED = "raw", "preprocessed"


def migrate(config: dict, where: str = "config.json") -> dict:
    """``config`` (a config.json's content) as this labkit's :data:`FORMAT`, in memory; the file
    is not rewritten. What a format-1 run lacks is made explicit: ``model_inputs`` is
    :data:`PREPROCESSED` unless recorded, ``data_spec`` None when the run recorded none (then
    :attr:`labkit.runs.Run.spec` reads it from the dataset). A config from a newer labkit is a
    LabkitError."""
    version = config.get("format", 1)
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise LabkitError(f"{where} is damaged: its format is {version!r}, not a whole number.")
    if version > FORMAT:
        raise LabkitError(f"{where} was written by a newer labkit (run format {version}; this "
                          f"one reads up to {FORMAT}). Upgrade labkit to open it.")
    if version == 1:
        config = {**config, "format": FORMAT,
                  "model_inputs": config.get("model_inputs", PREPROCESSED),
                  "data_spec": config.get("data_spec")}
    return config
