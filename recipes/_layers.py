"""The few custom layers recipes need, registered so that saved models reload.

This module imports Keras when it is imported; recipes load it lazily, and
``labkit.runs.load_model`` imports it before reading a ``.keras`` file.
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
