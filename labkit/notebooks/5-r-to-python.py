# %% [markdown]
# # 5 · From R to Python
#
# The R lab's code, line by line, beside the same step in Python with Keras 3 and with labkit.
# Keras is the same library under both: R's `keras` package calls it through reticulate, so
# each R function has a Python twin with the same arguments — spelled with dots and lists
# instead of `%>%` and `c()`. [docs/r-to-python.md](../../docs/r-to-python.md) lists every
# function the labs use and the differences that bite.
#
# The R lab trains on MNIST (`dataset_mnist()`); this notebook uses the bundled 8×8 digits so
# it runs offline. `keras.datasets.mnist.load_data()` (or labkit's `dataset="mnist"` with TFDS)
# gives MNIST where there is network.

# %%
import numpy as np
import pandas as pd
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

import labkit

labkit.quiet_tensorflow()  # TensorFlow starts here, without its C++ start-up notices
import keras  # noqa: E402  (after it, on purpose)

keras.utils.set_random_seed(0)  # R: set_random_seed(0) (tensorflow package) / use_session_with_seed

# %% [markdown]
# ## The data
#
# ```r
# mnist <- dataset_mnist()
# x_train <- mnist$train$x; y_train <- mnist$train$y
# x_train <- array_reshape(x_train, c(60000, 28 * 28))   # row-major, as numpy
# x_train <- x_train / 255
# y_train <- to_categorical(y_train, 10)
# ```
#
# Python indexes from 0 and slices exclude the end (`x[:10]` is R's `x[1:10, ]`).
# `to_categorical` is not needed: the `sparse_` losses take the integer labels. (`dim(x) <- …`
# in R is column-major: its twin is `x.reshape(…, order="F")`.)

# %%
digits = load_digits()
x = digits.images.reshape(len(digits.images), 8 * 8) / 16  # pixels are 0..16 here, not 0..255
x_train, x_test, y_train, y_test = train_test_split(x, digits.target, test_size=0.2,
                                                    random_state=0, stratify=digits.target)
print("training", x_train.shape, "test", x_test.shape)

# %% [markdown]
# ## The models, with their parameter counts
#
# The MNIST dense net:
#
# ```r
# model <- keras_model_sequential() %>%
#   layer_dense(units = 512, activation = "relu", input_shape = c(28 * 28)) %>%
#   layer_dense(units = 10, activation = "softmax")
# summary(model)   # Total params: 407,050
# ```

# %%
model = keras.Sequential([
    keras.Input(shape=(28 * 28,)),  # R's input_shape = goes on keras.Input
    keras.layers.Dense(512, activation="relu"),
    keras.layers.Dense(10, activation="softmax"),
])
same = labkit.build("mlp", input_shape=(28, 28, 1), num_classes=10, units=[512])
print(f"Keras {model.count_params():,}, labkit {same.count_params():,}")

# %% [markdown]
# The MNIST convnet:
#
# ```r
# model <- keras_model_sequential() %>%
#   layer_conv_2d(filters = 32, kernel_size = c(3, 3), activation = "relu",
#                 input_shape = c(28, 28, 1)) %>%
#   layer_max_pooling_2d(pool_size = c(2, 2)) %>%
#   layer_conv_2d(filters = 64, kernel_size = c(3, 3), activation = "relu") %>%
#   layer_max_pooling_2d(pool_size = c(2, 2)) %>%
#   layer_conv_2d(filters = 64, kernel_size = c(3, 3), activation = "relu") %>%
#   layer_flatten() %>%
#   layer_dense(units = 64, activation = "relu") %>%
#   layer_dense(units = 10, activation = "softmax")   # Total params: 93,322
# ```

# %%
convnet = keras.Sequential([
    keras.Input(shape=(28, 28, 1)),
    keras.layers.Conv2D(32, (3, 3), activation="relu"),  # padding="valid", as R's default
    keras.layers.MaxPooling2D((2, 2)),
    keras.layers.Conv2D(64, (3, 3), activation="relu"),
    keras.layers.MaxPooling2D((2, 2)),
    keras.layers.Conv2D(64, (3, 3), activation="relu"),
    keras.layers.Flatten(),
    keras.layers.Dense(64, activation="relu"),
    keras.layers.Dense(10, activation="softmax"),
])
same = labkit.build("cnn", input_shape=(28, 28, 1), num_classes=10, filters=[32, 64, 64],
                    pooling=["max", "max", "none"], dense_units=[64], dropout=0,
                    padding="valid")
print(f"Keras {convnet.count_params():,}, labkit {same.count_params():,}")

# %% [markdown]
# The cats-vs-dogs convnet at 150×150 (conv 32-64-128-128, each followed by 2×2 max pooling,
# dense 512, one sigmoid unit: 3,453,121 parameters), and the VGG16 feature extractor
# (`application_vgg16(weights = "imagenet", include_top = FALSE, input_shape = c(150, 150, 3))`
# with dense 256 and a sigmoid: 16,812,353):

# %%
cats_dogs = labkit.build("cnn", input_shape=(150, 150, 3), num_classes=2, task="binary",
                         filters=[32, 64, 128, 128], padding="valid", dense_units=[512],
                         dropout=0)
vgg = labkit.build("vgg16_transfer", input_shape=(150, 150, 3), num_classes=2, task="binary",
                   weights="none")
print(f"cats vs dogs convnet {cats_dogs.count_params():,}, VGG16 transfer {vgg.count_params():,}")

# %% [markdown]
# ## Compile
#
# ```r
# model %>% compile(
#   optimizer = optimizer_rmsprop(learning_rate = 0.001),
#   loss = "categorical_crossentropy",
#   metrics = c("accuracy"))
# ```
#
# `%>%` hands the model to the function; in Python the function is a method of the model. Old R
# notes write `lr =`; Keras 3 accepts only `learning_rate=`.

# %%
model = keras.Sequential([keras.Input(shape=(64,)), keras.layers.Dense(512, activation="relu"),
                          keras.layers.Dense(10, activation="softmax")])
model.compile(optimizer=keras.optimizers.RMSprop(learning_rate=0.001),
              loss="sparse_categorical_crossentropy",  # integer labels: no to_categorical
              metrics=["accuracy"])

# %% [markdown]
# ## Fit with validation
#
# ```r
# history <- model %>% fit(x_train, y_train, epochs = 5, batch_size = 128,
#                          validation_split = 0.2)
# plot(history)
# ```
#
# R's `fit()` trains 10 epochs by default, Python's 1. Keras's `validation_split` takes the
# *last* rows, unshuffled — shuffle first if your rows are sorted (labkit splits stratified).

# %%
history = model.fit(x_train, y_train, epochs=5, batch_size=128, validation_split=0.2, verbose=2)
axes = pd.DataFrame(history.history).plot(xlabel="epoch - 1", title="plot(history)")

# %% [markdown]
# labkit does the same in one call, and keeps the run (config, history, checkpoints, curves) in
# a folder:

# %%
run = labkit.train("mlp", dataset="digits", units=[512], optimizer="rmsprop",
                   learning_rate=0.001, epochs=5, batch_size=128)
run.plot()

# %% [markdown]
# ## Evaluate
#
# ```r
# model %>% evaluate(x_test, y_test)
# ```

# %%
print(model.evaluate(x_test, y_test, verbose=0, return_dict=True))
print({k: v for k, v in labkit.evaluate(run).items() if k.startswith("test_")})

# %% [markdown]
# ## Predict
#
# ```r
# model %>% predict(x_test[1:5, ]) %>% k_argmax()   # old R code: predict_classes(x_test[1:5, ])
# ```
#
# `predict` gives the class probabilities; `argmax(axis=1)` the class (`predict_classes` is
# gone from Keras). labkit's `predict` takes files (here an `.npz` of 8×8 images as the
# dataset stores them) and names the classes.

# %%
probabilities = model.predict(x_test[:5], verbose=0)
print("Keras: ", probabilities.argmax(axis=1), "true:", y_test[:5])
np.savez("five_digits.npz", x=(x_test[:5] * 16).reshape(5, 8, 8))
labkit.predict(run, "five_digits.npz")

# %% [markdown]
# ## Save and load
#
# ```r
# save_model_hdf5(model, "mnist.h5")
# model <- load_model_hdf5("mnist.h5")
# ```
#
# Keras 3 saves `.keras` files (one zip with the architecture, weights and optimizer). A labkit
# run already holds `model.keras`; `labkit.load_run` reads the run back.

# %%
model.save("digits.keras")
again = keras.models.load_model("digits.keras")
print("same predictions:", np.allclose(again.predict(x_test[:5], verbose=0), probabilities))
print("labkit:", labkit.load_run(run.path).network.name, "from", run.path / "model.keras")

# %% [markdown]
# **Try it:** write the R lab's next model (add `layer_dropout(rate = 0.5)` after the first
# dense layer) in Python, and check its parameter count against `summary(model)` in R.

# %%
with_dropout = keras.Sequential([keras.Input(shape=(28 * 28,)),
                                 keras.layers.Dense(512, activation="relu"),
                                 keras.layers.Dropout(0.5),
                                 keras.layers.Dense(10, activation="softmax")])
print(f"{with_dropout.count_params():,} parameters: dropout adds none")
