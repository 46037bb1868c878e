"""See what a convnet sees: Grad-CAM heatmaps (CheXNet, lecture topic 16), feature maps and the
input patterns its filters respond to (the R course's "visualizing what convnets learn").

The functions take a Keras model whose inputs are what the recipe model takes (scaled images:
the run's model unwrapped, see :func:`labkit.runs.unwrap`) and return numpy arrays; drawing is
:mod:`labkit.plots`' and the CLI's. Layers are named as ``labkit describe`` shows them, with a
nested model's layers as ``base/layer`` (``vgg16/block5_conv3`` in ``vgg16_transfer``); the
default is the last convolution layer, looked up inside nested bases too. Gradients come from
the Keras backend's own differentiation (:func:`value_and_grad`): TensorFlow, JAX and PyTorch.
"""

from __future__ import annotations

import re

from labkit._lazy import lazy_import
from labkit.data.images import EXTENSIONS
from labkit.errors import LabkitError
from labkit.options import did_you_mean

np = lazy_import("numpy")


def spatial_layers(model, prefix: str = "") -> list[str]:
    """Paths of the layers with a spatial output ``(batch, height, width, channels)``, in order,
    nested models' layers included (``base/layer``)."""
    import keras

    found = []
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            found += spatial_layers(layer, f"{prefix}{layer.name}/")
        elif not isinstance(layer, keras.layers.InputLayer) and \
                len(getattr(layer, "output", None).shape) == 4:
            found.append(f"{prefix}{layer.name}")
    return found


def _convolutions(model, prefix: str = "") -> list[str]:
    """Paths of the convolution layers, nested models' included."""
    import keras

    found = []
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            found += _convolutions(layer, f"{prefix}{layer.name}/")
        elif "Conv" in type(layer).__name__:
            found.append(f"{prefix}{layer.name}")
    return found


def resolve_layer(model, name: str | None = None) -> str:
    """The path of layer ``name`` (a bare name is looked up in nested models too), or the last
    convolution layer (Grad-CAM's usual choice: ``block5_conv3`` in the R lab's VGG16; its maps
    are finer than the pooling after it), else the last spatial layer; a LabkitError for a
    model without one, or an unknown name."""
    layers = spatial_layers(model)
    if not layers:
        raise LabkitError(f"Model {model.name!r} has no convolutional (spatial) layers: Grad-CAM, "
                          "feature maps and filter patterns need a convolutional model (cnn, "
                          "resnet, vgg16, vgg16_transfer, transfer).")
    if name is None:
        convs = _convolutions(model)
        return convs[-1] if convs else layers[-1]
    matches = [p for p in layers if p == name or p.rsplit("/", 1)[-1] == name]
    if not matches:
        raise LabkitError(f"Model {model.name!r} has no spatial layer {name!r}."
                          f"{did_you_mean(name, [p.rsplit('/', 1)[-1] for p in layers])} "
                          f"Spatial layers: {', '.join(layers)}.")
    return matches[0]


def forward(model, x, path: str):
    """``(output of the layer at path, model output)`` for inputs ``x``, differentiable. A nested
    layer's model must be a chain of layers around its nested part (as ``vgg16_transfer`` is);
    that is checked against the model's own output."""
    import keras

    head, _, rest = path.partition("/")
    if not rest and not isinstance(model, keras.Sequential):
        probe = keras.Model(model.input, [model.get_layer(head).output, model.output])
        return probe(x, training=False)
    features, y = None, x
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        if layer.name == head and rest:
            features, y = forward(layer, y, rest)
        elif layer.name == head:
            features = y = layer(y, training=False)
        else:
            y = layer(y, training=False)
    return features, y


def _check_chain(model, x, path: str) -> None:
    import keras

    if "/" not in path:
        return
    _, chained = forward(model, x[:1], path)
    direct = model(x[:1], training=False)
    if not np.allclose(keras.ops.convert_to_numpy(chained), keras.ops.convert_to_numpy(direct),
                       atol=1e-4):
        raise LabkitError(f"{path}: reaching a layer inside a nested model needs the outer model "
                          "to be a chain of layers; this one branches. Pick a layer of the outer "
                          "model with --layer.")


def value_and_grad(fn, x):
    """``(fn(x), d fn / d x)`` as numpy arrays, for a scalar ``fn`` of Keras ops, through the
    backend's differentiation: ``tf.GradientTape``, ``jax.value_and_grad`` or
    ``torch.autograd.grad``."""
    import keras

    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        value, grad = jax.value_and_grad(fn)(keras.ops.convert_to_tensor(x))
    elif backend == "tensorflow":
        import tensorflow as tf

        x = tf.convert_to_tensor(x)
        with tf.GradientTape() as tape:
            tape.watch(x)
            value = fn(x)
        grad = tape.gradient(value, x)
    elif backend == "torch":
        import torch

        x = keras.ops.convert_to_tensor(x).detach().requires_grad_(True)
        value = fn(x)
        (grad,) = torch.autograd.grad(value, [x])
    else:
        raise LabkitError(f"Gradients are not available on Keras's {backend} backend; use "
                          "TensorFlow, JAX or PyTorch.")
    return keras.ops.convert_to_numpy(value), keras.ops.convert_to_numpy(grad)


def _shifted(model, path: str, shape: tuple):
    """``model`` rebuilt around the same layers, with a zero offset of ``shape`` (a variable,
    the ``offset`` attribute) added to the output of the layer at ``path``: the gradient with
    respect to the offset is the gradient with respect to that output, whatever comes after it
    (branches and skip connections included)."""
    import keras

    head, _, rest = path.partition("/")

    class Shift(keras.layers.Layer):
        def __init__(self, inner) -> None:
            super().__init__(name=f"{inner.name}_shifted")
            self.inner = inner

        def build(self, input_shape) -> None:
            self.offset = self.add_weight(shape=shape, initializer="zeros", name="offset")

        def call(self, inputs, training=None):
            return self.inner(inputs, training=training) + self.offset

        def compute_output_shape(self, input_shape):
            return self.inner.compute_output_shape(input_shape)

    found = []

    def clone(layer):
        if layer.name != head:
            return layer  # shared: the same weights
        if rest:
            nested = _shifted(layer, rest, shape)
            found.append(nested.offset)
            return nested
        shift = Shift(layer)
        found.append(shift)
        return shift

    rebuilt = keras.models.clone_model(model, clone_function=clone)
    rebuilt.offset = found[0] if isinstance(found[0], keras.Variable) else found[0].offset
    return rebuilt


def gradcam(model, images, *, layer: str | None = None, class_index=None, task=None):
    """Grad-CAM maps of ``images`` (scaled as the model takes them): ``(maps, scores, classes)``.

    ``maps``: ``(n, height, width)`` in [0, 1], upsampled to the images. The class explained is
    ``class_index`` (int, or one per image), default the predicted one; for a binary model
    (``task="binary"``, one sigmoid unit) class 1 is the unit and class 0 its complement.
    An ensemble (``member_1``, ``member_2``, … layers) averages its members' maps.
    """
    import keras

    images = np.asarray(images, dtype="float32")
    members = [m for m in model.layers if m.name.startswith("member_") and
               isinstance(m, keras.Model)]
    if members and layer is None:
        parts = [gradcam(m, images, class_index=class_index, task=task) for m in members]
        maps = np.mean([p[0] for p in parts], axis=0)
        peak = maps.reshape(len(maps), -1).max(axis=1).reshape(-1, 1, 1)
        return maps / np.maximum(peak, 1e-12), parts[0][1], parts[0][2]
    path = resolve_layer(model, layer)
    _check_chain(model, images, path)
    features, outputs = (keras.ops.convert_to_numpy(t) for t in forward(model, images, path))
    binary = task == "binary" or outputs.shape[-1] == 1

    def probabilities(out):
        return keras.ops.concatenate([1 - out, out], axis=-1) if binary else out

    if class_index is None:
        chosen = np.argmax(keras.ops.convert_to_numpy(probabilities(outputs)), axis=-1)
    else:
        chosen = np.broadcast_to(np.asarray(class_index, dtype="int64"), (len(images),))
    shifted = _shifted(model, path, features.shape)
    trainable = [v.value for v in shifted.trainable_variables]
    frozen = [v.value for v in shifted.non_trainable_variables]
    slot = next(i for i, v in enumerate(shifted.trainable_variables) if v is shifted.offset)
    picked = keras.ops.convert_to_tensor(chosen[:, None])

    def score(offset):
        values = [*trainable[:slot], offset, *trainable[slot + 1:]]
        out, _ = shifted.stateless_call(values, frozen, images, training=False)
        return keras.ops.sum(keras.ops.take_along_axis(probabilities(out), picked, axis=1))

    _, grads = value_and_grad(score, np.zeros(features.shape, "float32"))
    weights = grads.mean(axis=(1, 2), keepdims=True)  # (n, 1, 1, channels)
    cams = np.maximum((weights * features).sum(axis=-1), 0)[..., None]
    cams = keras.ops.convert_to_numpy(
        keras.ops.image.resize(cams, images.shape[1:3], interpolation="bilinear"))[..., 0]
    peak = cams.reshape(len(cams), -1).max(axis=1).reshape(-1, 1, 1)
    scores = np.take_along_axis(keras.ops.convert_to_numpy(probabilities(outputs)),
                                chosen[:, None], axis=1)[:, 0]
    return cams / np.maximum(peak, 1e-12), scores, chosen


def activations(model, image, layers: list[str] | None = None) -> dict[str, np.ndarray]:
    """Feature maps of one ``image`` (scaled): ``{layer path: (height, width, channels)}`` for
    ``layers`` (default every spatial layer)."""
    import keras

    x = np.asarray(image, dtype="float32")[None]
    paths = [resolve_layer(model, name) for name in layers] if layers else spatial_layers(model)
    if not paths:
        resolve_layer(model)  # the error for a model without spatial layers
    found = {}
    for path in paths:
        _check_chain(model, x, path)
        features, _ = forward(model, x, path)
        found[path] = keras.ops.convert_to_numpy(features)[0]
    return found


def filter_patterns(model, layer: str | None = None, *, filters: int = 16, steps: int = 40,
                    step_size: float = 0.1, seed: int = 0, show_progress: bool = False):
    """The inputs that maximise the mean activation of the first ``filters`` channels of
    ``layer``, by normalised gradient ascent from grey noise: ``(patterns, start, end)`` with
    the patterns ``(filters, height, width, channels)`` in [0, 1] and each filter's mean
    activation before and after. ``show_progress``: a bar on stderr counts the filters."""
    import keras

    from labkit import progress

    path = resolve_layer(model, layer)
    shape = tuple(model.input_shape[1:])
    rng = np.random.default_rng(seed)
    start_x = 0.5 + 0.05 * rng.standard_normal((1, *shape)).astype("float32")
    channels = keras.ops.convert_to_numpy(forward(model, start_x, path)[0]).shape[-1]
    patterns, start, end = [], [], []
    with progress.bar(f"filter patterns of {path}", total=min(filters, channels),
                      unit="filters", enabled=show_progress) as shown:
        for index in range(min(filters, channels)):
            x = start_x if index == 0 else \
                0.5 + 0.05 * rng.standard_normal((1, *shape)).astype("float32")
            pattern, first, final = _ascent(model, path, index, x, steps, step_size)
            patterns.append(pattern)
            start.append(first)
            end.append(final)
            shown.update(1)
    return np.stack(patterns), np.array(start), np.array(end)


def _ascent(model, path: str, index: int, x, steps: int, step_size: float):
    """Gradient ascent on channel ``index`` of ``path`` from ``x``: (pattern, first, final)."""
    import keras

    def activation(x):
        return keras.ops.mean(forward(model, x, path)[0][..., index])

    first = None
    for _ in range(steps):
        value, grad = value_and_grad(activation, x)
        first = float(value) if first is None else first
        x = np.clip(x + step_size * grad / (np.linalg.norm(grad) + 1e-8), 0, 1)
    final, _ = value_and_grad(activation, x)
    return x[0], (first if first is not None else float(final)), float(final)


METHODS = ("gradcam", "activations", "filters")


def output_stem(name: str) -> str:
    """A file-name stem for an explained input, safe inside the output folder: its last part,
    without the image extension, runs of other characters than letters, digits and ``-`` as
    ``_`` (``my_cat.jpg`` → ``my_cat``, ``digits.npz[0]`` → ``digits_npz_0``)."""
    from pathlib import Path

    last = Path(name).name
    if last.lower().endswith(EXTENSIONS):
        last = Path(last).with_suffix("").name
    return re.sub(r"[^\w-]+", "_", last).strip("_") or "input"



def explain_run(run, sources: list, *, method: str = "gradcam", layer: str | None = None,
                class_name: str | None = None, out=None, steps: int = 40,
                filters: int = 16, echo=lambda line: None, warn=None) -> list:
    """What ``labkit explain`` does: decode ``sources`` as the run's training did, explain them
    with ``method``, draw the PNGs into ``out`` (default ``RUN/explain``); returns their paths.
    ``echo`` is told which layer Grad-CAM explains; ``warn`` (default: a Python warning) when
    the images fall clearly outside the range the run was trained on.
    """
    from pathlib import Path

    from labkit import layout, plots, runs
    from labkit.prediction import read_images

    if method not in METHODS:
        raise LabkitError(f"--method must be one of {', '.join(METHODS)}. Received: {method!r}")
    run = runs.open_run(run) if not isinstance(run, runs.Run) else run
    spec = run.spec
    if len(spec.input_shape) != 3:
        raise LabkitError(f"{run.path} was trained on inputs of shape {spec.input_shape}: "
                          "Grad-CAM, feature maps and filter patterns need an image model.")
    model = runs.unwrap(runs.load_model(run, compile=False))
    resolve_layer(model, layer)  # a model without spatial layers, or a wrong name, fails first
    out = Path(out) if out else run.file(layout.EXPLAIN)
    out.mkdir(parents=True, exist_ok=True)
    if method == "filters":
        patterns, start, end = filter_patterns(model, layer, filters=filters, steps=steps,
                                               show_progress=True)
        name = resolve_layer(model, layer)
        path = out / f"filters_{name.replace('/', '_')}.png"
        plots.channel_grid(patterns, f"{name}: patterns that maximise {len(patterns)} filters "
                           f"({steps} steps)", path, label="filter", values="input value")
        return [path]
    names, raw = read_images(run, spec, list(sources))
    from labkit import ranges

    warning = ranges.outside(run.input_range, raw, run.config["dataset"])
    if warning:
        (warn or ranges.warn)(warning)
    x = spec.preprocessing.numpy(raw)
    stems = [output_stem(n) for n in names]
    labels = list(spec.class_names) or [str(i) for i in range(spec.num_classes)]
    if method == "activations":
        written = []
        for path_name, maps in activations(model, x[0], [layer] if layer else None).items():
            path = out / f"activations_{stems[0]}_{path_name.replace('/', '_')}.png"
            plots.channel_grid(maps, f"{Path(names[0]).name}: {path_name} "
                               f"({maps.shape[-1]} channels)", path)
            written.append(path)
        return written
    chosen = None
    if class_name is not None:
        if class_name not in labels:
            raise LabkitError(f"--class {class_name!r} is not a class of this run."
                              f"{did_you_mean(class_name, labels)} Classes: {', '.join(labels)}.")
        chosen = labels.index(class_name)
    echo(f"Grad-CAM at {resolve_layer(model, layer)}, {len(names)} image(s)")
    maps, scores, classes = gradcam(model, x, layer=layer, class_index=chosen, task=spec.task)
    titles = [f"{Path(n).name}\n{labels[c]} p={s:.2f}" for n, c, s in
              zip(names, classes, scores, strict=True)]
    written = []
    for i in range(len(names)):
        path = out / f"gradcam_{stems[i]}.png"
        plots.heatmaps(raw[i:i + 1], maps[i:i + 1], titles[i:i + 1], path)
        written.append(path)
    if len(names) > 1:
        sheet = out / "gradcam_sheet.png"
        plots.heatmaps(raw, maps, titles, sheet)
        written.append(sheet)
    return written
