# %% [markdown]
# # 3 · Convolutional networks (*faltade nätverk*)
#
# Lecture topics 13–22: convolution (*faltning*) for grid data — 1-D time series and 2-D
# images — instead of matrix multiplication; padding, stride and pooling; why convolution
# (sparse connections, parameter sharing); residual nets; VGG16 and transfer learning; and what
# a trained convnet looks at (CheXNet's heatmaps, here Grad-CAM).
#
# Each section states the claim, shows it, runs its lab (quick versions here) and ends with a
# **try it** cell. Runs go to `runs/`, labs to `labs/`.

# %%
import numpy as np
from IPython.display import Image, display

import labkit

labkit.quiet_tensorflow()  # TensorFlow starts here, without its C++ start-up notices
import keras  # noqa: E402  (after it, on purpose)

# The bundled 8×8 digits, offline; name a TFDS image dataset you have prepared to use it.
BIGGER = None  # "mnist", "fashion_mnist" or "cifar10"
DATASET = BIGGER if BIGGER and labkit.data.tfds.prepared(BIGGER) else "digits"
print("training on", DATASET)

# %% [markdown]
# ## Convolution as a flipped kernel (topics 14 and 18)
#
# The discrete convolution S(i, j) = Σₘ Σₙ I(m, n) K(i − m, j − n) **flips** the kernel.
# Deep-learning libraries compute the cross-correlation Σₘ Σₙ I(i + m, j + n) K(m, n) instead —
# the same operation with the kernel not flipped (Goodfellow fig. 9.1, "valid" positions only).
# A learnt kernel does not care, but a hand-made one does:

# %%
rng = np.random.default_rng(0)
image = rng.normal(size=(6, 6)).astype("float32")
kernel = np.array([[1, 2, 0], [0, 1, -1], [3, 0, 1]], "float32")  # not symmetric


def cross_correlate(x, k):  # what a convolution layer computes, "valid" positions
    rows, cols = x.shape[0] - k.shape[0] + 1, x.shape[1] - k.shape[1] + 1
    return np.array([[(x[i:i + k.shape[0], j:j + k.shape[1]] * k).sum() for j in range(cols)]
                     for i in range(rows)])


conv = keras.layers.Conv2D(1, 3, padding="valid", use_bias=False)
conv.build((None, 6, 6, 1))
conv.set_weights([kernel[:, :, None, None]])
keras_out = keras.ops.convert_to_numpy(conv(image[None, :, :, None]))[0, :, :, 0]
flipped = cross_correlate(image, kernel[::-1, ::-1])  # the mathematical convolution
print("Keras = cross-correlation:", np.allclose(keras_out, cross_correlate(image, kernel),
                                                atol=1e-5))
print("Keras = convolution with the kernel as given:", np.allclose(keras_out, flipped, atol=1e-5))

# %%
labkit.labs.run("convolution", quick=True)

# %% [markdown]
# **Try it:** a symmetric kernel (e.g. `np.ones((3, 3))`) makes both agree. Which of the
# kernels below does?

# %%
for name, k in {"box": np.ones((3, 3)), "edge": np.array([[1, 0, -1]] * 3)}.items():
    same = np.allclose(cross_correlate(image, k), cross_correlate(image, k[::-1, ::-1]))
    print(f"{name}: flipping changes nothing: {same}")

# %% [markdown]
# ## Padding, stride and pooling (topics 20–21)
#
# Without zero padding each layer shrinks the image by k − 1 (Goodfellow fig. 9.13);
# `padding="same"` keeps its size; stride 2 skips every other position; 2×2 max pooling halves
# the size and makes the output nearly invariant to small shifts.

# %%
x = np.zeros((1, 28, 28, 1), "float32")
for layer in (keras.layers.Conv2D(8, 3, padding="valid"), keras.layers.Conv2D(8, 3, padding="same"),
              keras.layers.Conv2D(8, 3, strides=2, padding="same"), keras.layers.MaxPooling2D(2)):
    print(f"{layer.__class__.__name__:13} {layer.get_config().get('padding'):6} "
          f"strides {layer.get_config()['strides']}: 28×28 → {tuple(layer(x).shape[1:3])}")

# %%
labkit.labs.run("padding-stride", quick=True)

# %% [markdown]
# **Try it:** the R lab's MNIST convnet uses "valid" padding: how large are its feature maps
# after each layer? (`labkit.build` returns the Keras model; `summary()` lists the shapes.)

# %%
model = labkit.build("cnn", input_shape=(28, 28, 1), num_classes=10, filters=[32, 64, 64],
                     pooling=["max", "max", "none"], dense_units=[64], dropout=0,
                     padding="valid")  # try padding="same"
model.summary()

# %% [markdown]
# ## Why convolution: parameter sharing (topic 15)
#
# A convolution layer uses each kernel at every position (*parameterdelning*), so it needs far
# fewer parameters than a dense layer over the same pixels (Goodfellow fig. 9.5), and it keeps
# the spatial information.

# %%
dense = labkit.build("mlp", input_shape=(28, 28, 1), num_classes=10, units=[512])
conv_net = labkit.build("cnn", input_shape=(28, 28, 1), num_classes=10, filters=[32, 64])
print(f"dense net {dense.count_params():,} parameters, convnet {conv_net.count_params():,}")

# %%
labkit.labs.run("parameter-sharing", quick=True)

# %% [markdown]
# ## 1-D convolution: time series (topic 13)
#
# The same layers slide along one axis for a series. The bundled control-chart series
# (normal, cyclic, trends and shifts, 60 steps each) train a `cnn1d`:

# %%
run = labkit.train("cnn1d", dataset="control_charts", epochs=10)
print(f"test accuracy {run.metrics['test_accuracy']:.3f}")

# %% [markdown]
# **Try it:** a wider kernel sees longer patterns.

# %%
for kernel_size in (3, 9):  # try 15
    run = labkit.train("cnn1d", dataset="control_charts", epochs=10, kernel_size=kernel_size,
                       echo=None)
    print(f"kernel {kernel_size}: test accuracy {run.metrics['test_accuracy']:.3f}")

# %% [markdown]
# ## Residual nets (topic 12)
#
# Skip connections (*kopplingar som hoppar över lager*): each block learns a residual on top of
# its input. A deep plain net trains worse than the same depth with skips:

# %%
labkit.labs.run("residual", quick=True)

# %% [markdown]
# **Try it:** the `resnet` recipe with and without its skips. At this small depth both
# train; make it deeper (`blocks=[4, 4, 4]`) and compare again.

# %%
for skip in (True, False):
    run = labkit.train("resnet", dataset=DATASET, epochs=8, blocks=[2, 2], width=8, skip=skip,
                       echo=None)
    print(f"skip={skip}: test accuracy {run.metrics['test_accuracy']:.3f}")

# %% [markdown]
# ## VGG16 and transfer from a weights file (topics 22 and 12)
#
# VGG16 passes a 224×224×3 image through five blocks of 3×3 convolutions and max pooling, then
# two dense layers of 4096. For transfer learning the R lab loads its convolutional base
# (`include_top = FALSE`) with ImageNet weights, trains a new head on the frozen base, then
# fine-tunes the top blocks.
#
# The ImageNet weights cannot be downloaded here, so this notebook saves a weights file from a
# **randomly initialised** base and loads it through the same path: the steps are the lab's,
# the accuracy is not. With the real file (copied to
# `~/.keras/models/vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5`), use
# `weights="imagenet"`.

# %%
base = keras.applications.VGG16(include_top=False, weights=None, input_shape=(32, 32, 3))
base.save_weights("vgg16_notop_random.weights.h5")
run = labkit.train("vgg16_transfer", dataset=DATASET, weights="vgg16_notop_random.weights.h5",
                   epochs=2, fine_tune_epochs=1, fine_tune_from="block5_conv1", dense_units=64)
run.history[["epoch", "phase", "loss", "val_accuracy"]]

# %% [markdown]
# ## What the network looks at: Grad-CAM (topic 16)
#
# CheXNet marks where in an X-ray it sees pneumonia. Grad-CAM does this for any convnet: the
# last convolution's feature maps weighted by the gradient of the class score. On digits the
# evidence should sit on the strokes:

# %%
labkit.labs.run("what-convnets-see", quick=True)

# %% [markdown]
# **Try it:** explain your own trained convnet on some digits (any image files, folders or an
# `.npz` work as inputs).

# %%
from sklearn.datasets import load_digits  # noqa: E402

np.savez("some_digits.npz", x=load_digits().images[-8:].astype("uint8"))
run = labkit.train("cnn", dataset="digits", epochs=10, echo=None)
pictures = labkit.explain.explain_run(run, ["some_digits.npz"], method="gradcam")
print(f"{len(pictures)} pictures in {pictures[0].parent}; the sheet of all eight:")
display(Image(filename=str(next(p for p in pictures if p.stem == "gradcam_sheet"))))

# %% [markdown]
# The feature maps of the first convolution block on the same digits:

# %%
for picture in labkit.explain.explain_run(run, ["some_digits.npz"], method="activations",
                                          layer="block1_conv"):
    display(Image(filename=str(picture)))
