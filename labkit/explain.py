"""See what a convnet sees: Grad-CAM heatmaps (CheXNet, lecture topic 16), feature maps and the
input patterns its filters respond to (the R course's "visualizing what convnets learn").

The functions take a Keras model whose inputs are what the recipe model takes (scaled images:
the run's model unwrapped, see :func:`labkit.runs.unwrap`) and return numpy arrays; drawing is
:mod:`labkit.plots`' and the CLI's. Layers are named as ``labkit describe`` shows them, with a
nested model's layers as ``base/layer`` (``vgg16/block5_conv3`` in ``vgg16_transfer``); the
default is the last convolution layer, looked up inside nested bases too. Gradients
come from TensorFlow's GradientTape: these functions need the TensorFlow backend.
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
    if not rest:
        probe = keras.Model(model.input, [model.get_layer(head).output, model.output])
        return probe(x, training=False)
    features, y = None, x
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        if layer.name == head:
            features, y = forward(layer, y, rest)
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
    import tensorflow as tf

    path = resolve_layer(model, layer)
    _check_chain(model, images, path)
    x = tf.constant(images)
    with tf.GradientTape() as tape:
        features, outputs = forward(model, x, path)
        tape.watch(features)
        binary = task == "binary" or outputs.shape[-1] == 1
        probabilities = tf.concat([1 - outputs, outputs], axis=-1) if binary else outputs
        if class_index is None:
            chosen = tf.argmax(probabilities, axis=-1)
        else:
            chosen = tf.constant(np.broadcast_to(class_index, (len(images),)), tf.int64)
        scores = tf.gather(probabilities, chosen, axis=1, batch_dims=1)
    grads = tape.gradient(scores, features)
    weights = tf.reduce_mean(grads, axis=(1, 2), keepdims=True)  # (n, 1, 1, channels)
    cams = tf.nn.relu(tf.reduce_sum(weights * features, axis=-1))[..., None]
    cams = tf.image.resize(cams, images.shape[1:3], method="bilinear")[..., 0].numpy()
    peak = cams.reshape(len(cams), -1).max(axis=1).reshape(-1, 1, 1)
    return cams / np.maximum(peak, 1e-12), scores.numpy(), chosen.numpy()


def activations(model, image, layers: list[str] | None = None) -> dict[str, np.ndarray]:
    """Feature maps of one ``image`` (scaled): ``{layer path: (height, width, channels)}`` for
    ``layers`` (default every spatial layer)."""
    x = np.asarray(image, dtype="float32")[None]
    paths = [resolve_layer(model, name) for name in layers] if layers else spatial_layers(model)
    if not paths:
        resolve_layer(model)  # the error for a model without spatial layers
    found = {}
    for path in paths:
        _check_chain(model, x, path)
        features, _ = forward(model, x, path)
        found[path] = np.asarray(features)[0]
    return found


def filter_patterns(model, layer: str | None = None, *, filters: int = 16, steps: int = 40,
                    step_size: float = 0.1, seed: int = 0):
    """The inputs that maximise the mean activation of the first ``filters`` channels of
    ``layer``, by normalised gradient ascent from grey noise: ``(patterns, start, end)`` with
    the patterns ``(filters, height, width, channels)`` in [0, 1] and each filter's mean
    activation before and after."""
    import tensorflow as tf

    path = resolve_layer(model, layer)
    shape = tuple(model.input_shape[1:])
    rng = np.random.default_rng(seed)
    patterns, start, end = [], [], []
    for index in range(filters):
        x = tf.Variable(0.5 + 0.05 * rng.standard_normal((1, *shape)).astype("float32"))

        def activation(x=x, index=index):
            features, _ = forward(model, x, path)
            if index >= features.shape[-1]:
                return None
            return tf.reduce_mean(features[..., index])

        first = activation()
        if first is None:
            break
        for _ in range(steps):
            with tf.GradientTape() as tape:
                value = activation()
            grad = tape.gradient(value, x)
            x.assign(tf.clip_by_value(x + step_size * grad / (tf.norm(grad) + 1e-8), 0, 1))
        patterns.append(x.numpy()[0])
        start.append(float(first))
        end.append(float(activation()))
    return np.stack(patterns), np.array(start), np.array(end)


METHODS = ("gradcam", "activations", "filters")



def explain_run(run, sources: list, *, method: str = "gradcam", layer: str | None = None,
                class_name: str | None = None, out=None, steps: int = 40,
                filters: int = 16) -> list:
    """What ``labkit explain`` does: decode ``sources`` as the run's training did, explain them
    with ``method``, draw the PNGs into ``out`` (default ``RUN/explain``); returns their paths.
    """
    from pathlib import Path

    from labkit import plots, runs
    from labkit.prediction import read_images, run_spec

    if method not in METHODS:
        raise LabkitError(f"--method must be one of {', '.join(METHODS)}. Received: {method!r}")
    run = runs.open_run(run) if not isinstance(run, runs.Run) else run
    spec = run_spec(run)
    if len(spec.input_shape) != 3:
        raise LabkitError(f"{run.path} was trained on inputs of shape {spec.input_shape}: "
                          "Grad-CAM, feature maps and filter patterns need an image model.")
    model = runs.unwrap(runs.load_model(run, compile=False))
    resolve_layer(model, layer)  # a model without spatial layers, or a wrong name, fails first
    out = Path(out) if out else run.path / "explain"
    out.mkdir(parents=True, exist_ok=True)
    if method == "filters":
        patterns, start, end = filter_patterns(model, layer, filters=filters, steps=steps)
        name = resolve_layer(model, layer)
        path = out / f"filters_{name.replace('/', '_')}.png"
        plots.channel_grid(patterns, f"{name}: patterns that maximise {len(patterns)} filters "
                           f"({steps} steps)", path)
        return [path]
    names, raw = read_images(run, spec, list(sources))
    x = spec.preprocessing.numpy(raw)
    stems = [re.sub(r"[^\w-]+", "_", Path(n).with_suffix("").name
                    if n.lower().endswith(EXTENSIONS) else Path(n).name).strip("_")
             for n in names]  # my_cat.jpg → my_cat; digits.npz[0] → digits_npz_0
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
