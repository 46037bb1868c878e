"""The export formats, one record each: what ``labkit export --format NAME`` writes, what it
needs, how its own runtime loads it back, and the lines that run it without labkit.

:data:`FORMATS` is the registry; the CLI's ``--format`` choices, the README's table
(:func:`markdown_table`), the export tests and :mod:`labkit.export` all read it. Adding a format
is one :class:`Format` here (see docs/contributing.md).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from labkit.errors import LabkitError

Runner = Callable[[object], object]  # raw float32 inputs → outputs, as a numpy array


@dataclass(frozen=True)
class Format:
    """One export format.

    ``write(model, target, x, quantize)`` writes ``model`` (taking raw inputs) to ``target``,
    the file or folder called ``file`` inside the export folder; ``x`` is raw examples (int8
    calibration). ``load(target)`` returns a :data:`Runner` built with the runtime a user of the
    format would use. ``snippet`` is the three lines that do the same without labkit (``x``:
    raw float32 inputs; run from inside the export folder); the model card, the README and a
    test show and run it. ``packages`` are the modules it needs beyond TensorFlow and Keras.
    """

    name: str
    file: str
    summary: str
    runtime: str
    write: Callable[..., None]
    load: Callable[[Path], Runner]
    snippet: str
    packages: tuple[str, ...] = ()
    quantizes: bool = False  # accepts --quantize


def _write_keras(model, target: Path, x, quantize) -> None:
    model.save(target)


def _load_keras(target: Path) -> Runner:
    from labkit.trust import load_keras

    reloaded = load_keras(target)
    return lambda x: reloaded.predict(x, verbose=0)


def _write_savedmodel(model, target: Path, x, quantize) -> None:
    model.export(str(target), format="tf_saved_model", verbose=False)


def _load_savedmodel(target: Path) -> Runner:
    import tensorflow as tf

    reloaded = tf.saved_model.load(str(target))  # must stay referenced: owns the variables
    return lambda x: reloaded.serve(tf.constant(x, tf.float32)).numpy()


def _write_litert(model, target: Path, x, quantize) -> None:
    """TensorFlow's LiteRT converter on a SavedModel of ``model``; ``int8`` is calibrated on
    ``x``."""
    import tensorflow as tf

    saved = target.with_name(".for_litert")
    model.export(str(saved), format="tf_saved_model", verbose=False)
    converter = tf.lite.TFLiteConverter.from_saved_model(str(saved))
    if quantize:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantize == "float16":
        converter.target_spec.supported_types = [tf.float16]
    if quantize == "int8":
        converter.representative_dataset = lambda: ([x[i:i + 1]] for i in range(len(x)))
    flat = converter.convert()
    shutil.rmtree(saved)
    target.write_bytes(flat)


def _load_litert(target: Path) -> Runner:
    from ai_edge_litert.interpreter import Interpreter

    runner = Interpreter(str(target)).get_signature_runner()
    name = next(iter(runner.get_input_details()))
    return lambda x: next(iter(runner(**{name: x}).values()))


def _write_onnx(model, target: Path, x, quantize) -> None:
    model.export(str(target), format="onnx", verbose=False)


def _load_onnx(target: Path) -> Runner:
    import onnxruntime

    session = onnxruntime.InferenceSession(str(target), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return lambda x: session.run(None, {name: x})[0]


FORMATS: dict[str, Format] = {f.name: f for f in (
    Format("keras", "model.keras", "Keras 3 model file", "Keras", _write_keras, _load_keras,
           'import keras\n'
           'model = keras.models.load_model("model.keras")\n'
           'outputs = model.predict(x)'),
    Format("savedmodel", "savedmodel", "TensorFlow SavedModel, a serving signature on raw inputs",
           "`tf.saved_model.load`", _write_savedmodel, _load_savedmodel,
           'import tensorflow as tf\n'
           'model = tf.saved_model.load("savedmodel")\n'
           'outputs = model.serve(tf.constant(x, tf.float32)).numpy()'),
    Format("litert", "model.tflite", "LiteRT flatbuffer (--quantize dynamic, float16 or int8)",
           "the `ai-edge-litert` interpreter", _write_litert, _load_litert,
           'from ai_edge_litert.interpreter import Interpreter\n'
           'run = Interpreter("model.tflite").get_signature_runner()\n'
           'outputs = next(iter(run(**{next(iter(run.get_input_details())): x}).values()))',
           packages=("ai_edge_litert",), quantizes=True),
    Format("onnx", "model.onnx", "ONNX graph (Keras's ONNX export)", "`onnxruntime`",
           _write_onnx, _load_onnx,
           'import onnxruntime\n'
           'session = onnxruntime.InferenceSession("model.onnx")\n'
           'outputs = session.run(None, {session.get_inputs()[0].name: x})[0]',
           packages=("onnxruntime", "onnx", "tf2onnx")),
)}
ALL = "all"  # --format all: every format, each in its own folder


def get(name: str) -> Format:
    """The format called ``name``; any other name is a LabkitError listing the choices."""
    if name not in FORMATS:
        raise LabkitError(f"--format must be one of {', '.join(FORMATS)} or {ALL}. "
                          f"Received: {name!r}")
    return FORMATS[name]


def markdown_table() -> str:
    """The README's table of formats, from the registry (a test keeps the README in step)."""
    rows = ["| `--format` | writes | checked with | needs |", "|---|---|---|---|"]
    for f in FORMATS.values():
        needs = 'the `export` extra' if f.packages else "-"
        rows.append(f"| `{f.name}` | `{f.file}`: {f.summary} | {f.runtime} | {needs} |")
    return "\n".join(rows)
