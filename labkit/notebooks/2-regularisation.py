# %% [markdown]
# # 2 · Regularisation (*regularisering*)
#
# Lecture topics 9–12: norm penalties, dropout, early stopping, data augmentation, ensembles
# and transfer learning — ways to make a network that fits its training data well also do well
# on data it has not seen (less overfitting, *överanpassning*).
#
# As in the first notebook: each section states the claim, shows it, runs its lab (quick
# versions here; `quick=False` for the full ones) and ends with a **try it** cell. Runs go to
# `runs/`, labs to `labs/`.

# %%
import numpy as np

import labkit

labkit.quiet_tensorflow()  # TensorFlow starts here, without its C++ start-up notices
import keras  # noqa: E402  (after it, on purpose)

# The bundled 8×8 digits, offline; name a TFDS dataset you have prepared to use it instead.
BIGGER = None  # "mnist", "fashion_mnist" or "cifar10"
DATASET = BIGGER if BIGGER and labkit.data.tfds.prepared(BIGGER) else "digits"
print("training on", DATASET)

# %% [markdown]
# ## Norm penalties (*normstraff*, topic 9)
#
# Ridge regression adds λΣβ² to the least-squares loss, lasso λΣ|β|. Networks do the same,
# h̃(θ) = h(θ) + αΩ(θ), with Ω the squared Frobenius norm (l²) or the sum of absolute values
# (l¹) of each weight matrix, and possibly a different α per layer. Keras adds
# **α·Σw²** — without the lecture's ½ — to the training loss. Plain Keras shows the term:

# %%
layer = keras.layers.Dense(4, kernel_regularizer=keras.regularizers.L2(0.01))
layer.build((None, 3))
weights = keras.ops.convert_to_numpy(layer.kernel)
print("Keras's penalty:  ", float(keras.ops.convert_to_numpy(layer.losses[0])))
print("0.01 · Σ w² by hand:", 0.01 * float((weights ** 2).sum()))

# %% [markdown]
# Larger α pulls the weights towards zero, so the fitted function is simpler; l¹ makes many of
# them exactly (or nearly) zero. The lab trains the same net with each penalty:

# %%
labkit.labs.run("weight-decay", quick=True)

# %% [markdown]
# **Try it:** what does α do to the weights' size and to the gap between training and
# validation loss? (`l2` takes one α, or one per layer: `l2=[0.01, 0]`.)

# %%
for alpha in (0.0, 0.01):  # try 0.001, 0.1
    run = labkit.train("mlp", dataset=DATASET, epochs=10, units=[128], l2=alpha, echo=None)
    kernel = run.network.get_layer("fc1").kernel.numpy()  # the recipe's layers by name
    last = run.history.iloc[-1]
    print(f"α = {alpha}: Σw² of fc1 = {(kernel ** 2).sum():7.1f}, "
          f"val − train loss = {last['val_loss'] - last['loss']:.3f}")

# %% [markdown]
# ## Dropout (topic 10)
#
# During training each node is set to zero with some probability; the network cannot rely on
# particular connections and spreads its capacity — like a random forest's random choices.
# Dropout is used in training only, not when testing (*används vid träning, inte vid
# testning*). Keras scales the kept values by 1/(1 − rate) so their expected sum stays the same:

# %%
dropout = keras.layers.Dropout(0.5, seed=1)
x = np.ones((1, 8), "float32")
print("training:", keras.ops.convert_to_numpy(dropout(x, training=True)))
print("testing: ", keras.ops.convert_to_numpy(dropout(x, training=False)))

# %%
labkit.labs.run("dropout", quick=True)

# %% [markdown]
# **Try it:** dropout on a wide net. The lab trains on a small training set, where the net
# without dropout soon overfits; on all 1 149 training digits, and for only 15 epochs, dropout
# mostly slows the fit. Where is the best validation loss, and does it rise again after? Try
# more epochs.

# %%
for rate in (0.0, 0.5):  # try 0.2, 0.8
    run = labkit.train("mlp", dataset=DATASET, epochs=15, units=[256, 256], dropout=rate,
                       echo=None)
    history = run.history
    print(f"dropout {rate}: best val loss {history['val_loss'].min():.3f} at epoch "
          f"{int(history.loc[history['val_loss'].idxmin(), 'epoch'])}, "
          f"final {history['val_loss'].iloc[-1]:.3f}")

# %% [markdown]
# ## Early stopping (topic 11)
#
# Stop the training before the maximal number of iterations, when the validation loss stops
# improving, and keep the best weights.

# %%
labkit.labs.run("early-stopping", quick=True)

# %% [markdown]
# **Try it:** `early_stopping` takes the patience (epochs without improvement); the run records
# where it stopped and which epoch's weights it kept.

# %%
run = labkit.train("mlp", dataset=DATASET, epochs=60, units=[256],
                   early_stopping="patience=3")  # try patience=10
print("stopped after epoch", run.metrics.get("stopped_epoch"), "- kept the weights of epoch",
      run.metrics.get("restored_epoch"))
run.plot()

# %% [markdown]
# ## Data augmentation (topic 11)
#
# Make more training data: mirrored, rotated, cropped or noisy copies of the images
# (*speglingar, rotationer, beskärningar, brus*). Keras's preprocessing layers do it on the fly,
# in training only.

# %%
labkit.labs.run("augmentation", quick=True)

# %% [markdown]
# **Try it:** `augment` names the transformations (a rotation is a fraction of a full turn).

# %%
run = labkit.train("cnn", dataset=DATASET, epochs=5, augment="rotation=0.05,zoom=0.1",
                   echo=None)  # try "translation=0.2"
print(f"test accuracy {run.metrics['test_accuracy']:.3f}")

# %% [markdown]
# ## Ensembles (topic 11)
#
# Train several networks from different start values and average their predictions on the
# test data.

# %%
labkit.labs.run("ensemble", quick=True)

# %% [markdown]
# **Try it:** an ensemble of `k` small nets; `labkit.evaluate` scores each member beside the
# ensemble.

# %%
run = labkit.train("ensemble", dataset=DATASET, epochs=5, member="mlp", k=3,  # try k=7
                   member_hparams={"units": [64]}, echo=None)
report = labkit.evaluate(run)
print(f"ensemble: test {report['members_metric']} {report['test_accuracy']:.3f}")
for member, score in report["members"].items():
    print(f"{member}: {score:.3f}")

# %% [markdown]
# ## Transfer learning (topic 12)
#
# Start from a network trained on another problem (*förtränade nätverk*): a clever way to set
# the start values, often effective on small datasets. The lab pretrains a conv base on some
# digits and transfers it to the others:

# %%
labkit.labs.run("transfer", quick=True)

# %% [markdown]
# **Try it:** the `transfer` recipe starts from any run's model; `freeze="all"` keeps the base
# fixed and trains a new head.

# %%
base = labkit.train("cnn", dataset=DATASET, epochs=3, echo=None)
run = labkit.train("transfer", dataset=DATASET, epochs=3, base=str(base.path),
                   freeze="all", echo=None)  # try freeze="none"
print(f"base {base.metrics['test_accuracy']:.3f}, transferred {run.metrics['test_accuracy']:.3f}")
