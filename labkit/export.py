"""``labkit export``: a run's model for other programs, each format checked in its own runtime.

The formats are :mod:`labkit.formats`' registry: ``keras``, ``savedmodel``, ``litert``
(optionally quantized) and ``onnx``, each written, loaded back by its own runtime and described
by its record there. Every export is a folder (default
``RUN/export/FORMAT``) holding the model, ``labkit.json`` (what it is, its inputs, the
preprocessing inside, classes, the source run's metrics, versions), ``parity.json`` (the check)
and ``README.md`` (a model card with the three lines that run it).

The check: the export's outputs on the run's held-out raw examples (``samples.npz``, kept at
training time; older runs load their data) against the Keras model's. Float formats must agree
to :data:`TOLERANCE`; quantized ones must pick the same class for :data:`AGREEMENT` of the
examples (their accuracy change is reported). An export that fails is removed, and nothing of a
half-written one is left behind.
"""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

from labkit import files, formats, layout, progress, runs
from labkit._lazy import lazy_import
from labkit.errors import LabkitError
from labkit.formats import FORMATS
from labkit.version import __version__

np = lazy_import("numpy")

QUANTIZE = ("dynamic", "float16", "int8")
TOLERANCE = 1e-4  # max |difference| of a float export's outputs
AGREEMENT = 0.99  # a quantized export's share of examples with the Keras model's top-1 answer


def export(run_path, fmt: str, output: str | None = None, *, quantize: str | None = None,
           force: bool = False, show_progress: bool = True) -> list[dict]:
    """Write run ``run_path``'s model as ``fmt`` (a name in :data:`labkit.formats.FORMATS`, or
    ``all``: each in
    its own folder under ``output``), check it in its runtime and describe it. Returns each
    export's parity report: ``{"format", "path", "examples", "max_abs_diff", ...}``.
    ``show_progress``: a bar on stderr counts the formats written and checked.

    Raises:
        LabkitError: a bad format or option, a non-empty output folder without ``force``, a
            missing runtime package, or an export that disagrees with the Keras model.
    """
    chosen = list(FORMATS.values()) if fmt == formats.ALL else [formats.get(fmt)]
    if quantize is not None and quantize not in QUANTIZE:
        raise LabkitError(f"--quantize must be one of {', '.join(QUANTIZE)}. "
                          f"Received: {quantize!r}")
    if quantize is not None and not any(f.quantizes for f in chosen):
        quantizing = " or ".join(f.name for f in FORMATS.values() if f.quantizes)
        raise LabkitError(f"--quantize applies to --format {quantizing}.")
    for f in chosen:
        missing = [m for m in f.packages if importlib.util.find_spec(m) is None]
        if missing:
            raise LabkitError(f"--format {f.name} needs {', '.join(missing)}: "
                              'pip install -e ".[export]"')
    run = runs.open_run(run_path)
    root = Path(output) if output else run.file(layout.EXPORT)
    folders = {f.name: (root / f.name if fmt == formats.ALL or not output else root)
               for f in chosen}
    for folder in folders.values():
        if folder.exists() and any(folder.iterdir()) and not force:
            raise LabkitError(f"{folder} exists and is not empty; choose another --output or "
                              "pass --force to replace it.")
    model = runs.inference_model(run, "final")
    x, y = run.samples()
    reports = []
    with progress.bar("export", total=len(chosen), unit="formats",
                      enabled=show_progress) as shown:
        for f in chosen:
            shown.set_postfix_str(f"{f.name}: writing, then checking", refresh=False)
            reports.append(_export_one(run, model, x, y, f, folders[f.name],
                                       quantize if f.quantizes else None))
            shown.update(1)
    return reports


def _export_one(run, model, x, y, fmt: formats.Format, folder: Path,
                quantize: str | None) -> dict:
    """Write ``fmt`` into a temporary folder beside ``folder``, check it, describe it, then
    put it in place; a failure leaves nothing."""
    tmp = folder.with_name(f".{folder.name}.tmp")
    try:
        _remove(tmp)
        tmp.mkdir(parents=True)
    except OSError as err:
        raise files.FileFault(folder, err) from None
    try:
        target = tmp / fmt.file
        expected = model.predict(x, verbose=0)  # also builds a just-loaded model for export
        _write(model, fmt, target, x, quantize)
        got = np.asarray(fmt.load(target)(x))
        report = parity(run, fmt.name, expected, got, y, quantize)
        files.write_json(tmp / layout.PARITY, report)
        card = describe(run, model, fmt, quantize, report)
        if fmt.name == "onnx":
            import onnx

            card["opset"] = int(onnx.load(str(target)).opset_import[0].version)
        files.write_json(tmp / layout.CARD, card)
        files.write_text(tmp / layout.MODEL_CARD, model_card(card))
    except OSError as err:  # a full disk, a folder that went read-only, …
        _remove(tmp, quiet=True)
        raise files.FileFault(folder, err) from None
    except files.FileFault as fault:  # the same, met while writing a file: name the export
        _remove(tmp, quiet=True)
        raise files.FileFault(folder, OSError(fault.errno, str(fault))) from None
    except BaseException:
        _remove(tmp, quiet=True)
        raise
    try:
        _remove(folder)
        tmp.rename(folder)
    except OSError as err:
        _remove(tmp, quiet=True)
        raise files.FileFault(folder, err) from None
    return {**report, "path": str(folder / fmt.file)}


def _write(model, fmt: formats.Format, target: Path, x, quantize: str | None) -> None:
    try:
        fmt.write(model, target, x, quantize)
    except (LabkitError, OSError):
        raise
    except Exception as err:
        raise LabkitError(f"{fmt.name} export failed: "
                          f"{str(err).strip().splitlines()[0][:200]}") from None


def parity(run, fmt: str, expected, got, y, quantize: str | None = None) -> dict:
    """The comparison of an export's outputs with the Keras model's; a LabkitError names the
    worst example when they disagree."""
    task = run.spec.task
    report = {"format": fmt, "examples": int(len(expected)), "quantize": quantize}
    if got.shape != expected.shape:
        raise LabkitError(f"The {fmt} export answers with shape {got.shape}, the Keras model "
                          f"with {expected.shape}; nothing was exported.")
    diff = np.abs(got.astype("float64") - expected).reshape(len(expected), -1).max(axis=1)
    worst = int(diff.argmax())
    report["max_abs_diff"] = float(diff[worst])
    if quantize is None:
        report["tolerance"] = TOLERANCE
        if not diff[worst] <= TOLERANCE:
            raise LabkitError(f"The {fmt} export disagrees with the Keras model: example "
                              f"{worst} differs by {diff[worst]:.3g} (> {TOLERANCE}); nothing "
                              "was exported.")
        return report
    if task == "regression":
        return report  # no classes to agree on: the difference is reported
    ours, theirs = _top1(task, expected), _top1(task, got)
    agreement = float((ours == theirs).mean())
    truth = np.asarray(y).reshape(ours.shape) if y is not None else None
    report.update({"agreement": agreement, "required_agreement": AGREEMENT})
    if truth is not None and truth.shape == ours.shape:
        report["accuracy_keras"] = float((ours == truth).mean())
        report["accuracy_export"] = float((theirs == truth).mean())
    if agreement < AGREEMENT:
        first = int(np.flatnonzero(ours != theirs)[0])
        raise LabkitError(f"The {quantize}-quantized {fmt} export picks another answer than "
                          f"the Keras model on {1 - agreement:.1%} of {len(ours)} examples "
                          f"(first: example {first}); nothing was exported.")
    return report


def _top1(task: str, outputs):
    if task in ("binary", "multilabel"):
        return (outputs >= 0.5).astype("int64")
    return outputs.argmax(axis=1)


def describe(run, model, fmt: formats.Format, quantize: str | None, report: dict) -> dict:
    """labkit.json: what the export is, what it takes and answers, where it came from."""
    import keras

    spec = run.spec
    prep = spec.preprocessing
    inside = []
    if prep.scale != 1:
        inside.append(f"Rescaling (inputs × 1/{prep.scale:g})")
    if prep.mean is not None:
        inside.append("standardisation: (x − mean) / std per feature, the training split's, "
                      "as a Rescaling layer")
    metrics = {k: v for k, v in run.metrics.items() if k.startswith("test_")}
    return {
        "format": fmt.name, "file": fmt.file, "quantize": quantize,
        "input": {"shape": [None, *model.input_shape[1:]], "dtype": "float32",
                  "raw": True, "feature_names": list(spec.feature_names)},
        "preprocessing_inside": inside,
        "task": spec.task,
        "class_names": list(spec.class_names),
        "metrics": metrics, "parity": report,
        "source_run": str(run.path.resolve()), "recipe": run.config.get("recipe"),
        "dataset": run.config.get("dataset"),
        "versions": {"labkit": __version__, "keras": keras.__version__,
                     **({"tensorflow": _tf_version()} if _tf_version() else {})},
        "python": fmt.snippet,
    }


def _tf_version() -> str | None:
    import sys

    tf = sys.modules.get("tensorflow")
    return getattr(tf, "__version__", None)


def model_card(card: dict) -> str:
    """README.md of an export folder, from its labkit.json."""
    task = card["task"]
    answers = {
        "classification": "one probability per class (softmax)",
        "binary": f"the probability of {card['class_names'][1] if card['class_names'] else '1'}"
                  " (one sigmoid unit)",
        "multilabel": "one probability per label",
        "regression": "the predicted value(s)",
    }.get(task, "its outputs")
    classes = ", ".join(card["class_names"]) or "-"
    shape = "×".join(str(d) for d in card["input"]["shape"][1:])
    inside = "; ".join(card["preprocessing_inside"]) or "nothing: inputs go in as they are"
    features = card["input"]["feature_names"]
    raw = f"the CSV columns {', '.join(features)}, in this order" if features else \
        "pixel values as stored, not scaled (the model scales them)"
    metrics = "\n".join(f"| {k} | {v:.4f} |" for k, v in card["metrics"].items()
                        if isinstance(v, float)) or "| - | - |"
    parity = card["parity"]
    checked = f"max |difference| {parity['max_abs_diff']:.2g}"
    if parity.get("agreement") is not None:
        checked += f", same top answer on {parity['agreement']:.1%}"
    return (f"# {card['recipe']} on {card['dataset']} ({card['format']})\n\n"
            f"A {task} model trained with labkit: `{card['file']}`. It answers {answers}.\n\n"
            f"- classes: {classes}\n"
            f"- input: float32 batches of {shape}, raw values: {raw}\n"
            f"- preprocessing inside the model: {inside}\n"
            f"- checked against the Keras model on {parity['examples']} held-out examples: "
            f"{checked}\n\n"
            f"## Test metrics of the source run\n\n| metric | value |\n|---|---|\n{metrics}\n\n"
            f"## Run it (x: a float32 numpy array of raw inputs)\n\n```python\n"
            f"{card['python']}\n```\n\nSource run: `{card['source_run']}`\n")


def _remove(path: Path, quiet: bool = False) -> None:
    """Remove a file or folder; ``quiet``: cleaning up after a failure, which must not hide it."""
    try:
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
    except OSError:
        if not quiet:
            raise
