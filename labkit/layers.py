"""labkit's own Keras objects — the layers, loss, regularizer and optimizer that recipes and
training need — registered as ``labkit>NAME`` so that saved models reload.

They live in the library, not in ``recipes``: the optimizer factory (:mod:`labkit.optim`) and
the model loader (:mod:`labkit.trust`) need them, and labkit never imports the recipes. This
module imports Keras when it is imported; recipes load it lazily, and
:func:`labkit.trust.load_keras` imports it before reading a ``.keras`` file.
"""

from __future__ import annotations

import keras
from keras import ops

# keras.applications.vgg16.preprocess_input ("caffe" mode): BGR order, ImageNet channel means.
VGG_MEANS_BGR = (103.939, 116.779, 123.68)


@keras.saving.register_keras_serializable(package="labkit")
class PlaygroundFeatures(keras.layers.Layer):
    """Maps points (x1, x2) to the chosen Playground features, e.g. x1², x1·x2, sin x1."""

    def __init__(self, features, **kwargs):
        super().__init__(**kwargs)
        self.features = list(features)

    def call(self, points):
        x1, x2 = points[:, 0], points[:, 1]
        columns = {"x1": x1, "x2": x2, "x1^2": x1 * x1, "x2^2": x2 * x2, "x1*x2": x1 * x2,
                   "sin(x1)": ops.sin(x1), "sin(x2)": ops.sin(x2)}
        return ops.stack([columns[f] for f in self.features], axis=1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], len(self.features))

    def get_config(self):
        return {**super().get_config(), "features": self.features}


@keras.saving.register_keras_serializable(package="labkit")
class VGGPreprocess(keras.layers.Layer):
    """Images in [0, 1] (grey or RGB) → what ImageNet VGG16 expects: RGB 0–255, then BGR minus the
    ImageNet channel means, as ``keras.applications.vgg16.preprocess_input`` does."""

    def call(self, images):
        if images.shape[-1] == 1:
            images = ops.repeat(images, 3, axis=-1)
        bgr = ops.flip(images * 255.0, axis=-1)
        return bgr - ops.convert_to_tensor(VGG_MEANS_BGR, dtype=bgr.dtype)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], 3)


# The TensorFlow Playground's own rules (its src/nn.ts), for the playground recipe's exact mode.
@keras.saving.register_keras_serializable(package="labkit")
class PlaygroundL1(keras.regularizers.L1):
    """The Playground's L1 penalty, ``l1 · Σ|w|``, whose weights die at zero: under
    :class:`PlaygroundSGD`, a weight that the L1 step (not the data's gradient) carries across 0
    is set to exactly 0 and never updated again, as ``nn.ts`` does. Other optimizers treat it as
    Keras's ``L1``."""

    prunes = True


@keras.saving.register_keras_serializable(package="labkit")
class PlaygroundSGD(keras.optimizers.SGD):
    """Keras's SGD, plus the Playground's rule for :class:`PlaygroundL1` weights (without
    momentum): with g the data's gradient and s = sign(w) before the step,

        w' = w − ε·g,  w'' = w' − ε·α·s;  w ← 0 for good if w'·w'' < 0, else w ← w''.

    Every other weight gets SGD's update unchanged."""

    def build(self, variables):
        if self.built:
            return
        super().build(variables)
        # Per variable: its L1 coefficient and a 0/1 "alive" mask, or None (plain SGD). Found
        # here, on Keras variables: update_step may receive the backend's bare variable.
        self.l1 = [self._pruned_l1(v) for v in variables]
        self.alive = [self.add_variable_from_reference(v, "alive", initializer="ones")
                      if l1 is not None else None for v, l1 in zip(variables, self.l1, strict=True)]

    def _pruned_l1(self, variable):
        regularizer = getattr(variable, "regularizer", None)
        if self.momentum == 0 and getattr(regularizer, "prunes", False):
            return regularizer.l1
        return None

    def update_step(self, gradient, variable, learning_rate):
        index = self._get_variable_index(variable)
        if self.l1[index] is None:
            return super().update_step(gradient, variable, learning_rate)
        alive = ops.convert_to_tensor(self.alive[index]) > 0
        rate = ops.cast(learning_rate, variable.dtype)
        old = ops.convert_to_tensor(variable)
        step = rate * self.l1[index] * ops.sign(old)
        new = old - rate * ops.cast(gradient, variable.dtype)  # the gradient includes α·s
        crossed = ops.logical_and(alive, (new + step) * new < 0)
        self.assign(variable, ops.where(alive, ops.where(crossed, 0.0, new), old))
        still = ops.logical_and(alive, ops.logical_not(crossed))
        self.assign(self.alive[index], ops.cast(still, old.dtype))


@keras.saving.register_keras_serializable(package="labkit")
class PlaygroundSquaredError(keras.losses.Loss):
    """The Playground's loss, ½(output − target)² averaged over the batch. With ``classes``, the
    model outputs P(blue) = (tanh + 1) / 2 and labels are 0/1: the Playground's output and target
    are 2p − 1 and 2y − 1 (±1)."""

    def __init__(self, classes: bool = True, name: str = "playground_squared_error", **kwargs):
        super().__init__(name=name, **kwargs)
        self.classes = classes

    def call(self, y_true, y_pred):
        y_true = ops.reshape(ops.cast(y_true, y_pred.dtype), ops.shape(y_pred))
        if self.classes:
            y_true, y_pred = 2 * y_true - 1, 2 * y_pred - 1
        return ops.mean(0.5 * ops.square(y_pred - y_true), axis=-1)

    def get_config(self):
        return {**super().get_config(), "classes": self.classes}

