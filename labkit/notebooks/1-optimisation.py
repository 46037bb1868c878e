# %% [markdown]
# # 1 · Optimisation of neural networks (*optimering av neurala nätverk*)
#
# Lecture topics 1–8: gradient descent and SGD, the learning rate, schedules, vanishing
# gradients, momentum, start values, RMSProp and Adam. Each section states the lecture's claim,
# shows it with Keras (plain Keras where the mechanics are the point, labkit where it saves the
# boilerplate), runs the lab that tests the claim, and ends with a **try it** cell.
#
# Run the cells from the top (*Run → Run All Cells*). Everything runs offline on a laptop CPU;
# the labs run their quick versions here (`quick=True`, seconds each); `quick=False` runs the full
# version, whose numbers `docs/labs.md` quotes.
#
# Runs are written to `runs/` and labs to `labs/` beside this notebook. Running a training cell
# again makes a new run directory, never an error. To stop a long training, interrupt the kernel
# (■): it stops at once, keeps every finished epoch (the running one is dropped), and the
# message says the call that continues it, `labkit.train(resume="runs/…")`.

# %%
import matplotlib.pyplot as plt
import numpy as np

import labkit

labkit.quiet_tensorflow()  # TensorFlow starts here, without its C++ start-up notices
import keras  # noqa: E402  (after it, on purpose)

# The bundled 8×8 digits train in seconds, offline. With MNIST, Fashion-MNIST or CIFAR-10
# prepared for TensorFlow Datasets (on a machine with network: `tfds build mnist`; see the
# README), name it here and the training cells below use it.
BIGGER = None  # "mnist", "fashion_mnist" or "cifar10"
DATASET = BIGGER if BIGGER and labkit.data.tfds.prepared(BIGGER) else "digits"
print("training on", DATASET)

# %% [markdown]
# ## Gradient descent and SGD (topics 1–2)
#
# Gradient descent takes the step θ ← θ − ε∇L(θ) with the gradient over **all** observations:
# expensive when there are many (*dyrt när vi har många obs*). SGD takes a random minibatch
# instead: an unbiased estimate (*väntevärdesriktig skattning*) of the gradient whose variance
# falls as the batch grows, at a higher cost per step.
#
# In Keras the difference is only the batch size: `batch_size="full"` is gradient descent.

# %%
for batch_size in ("full", 32):
    run = labkit.train("mlp", dataset=DATASET, optimizer="sgd", learning_rate=0.05,
                       batch_size=batch_size, epochs=10, units=[64], echo=None)
    print(f"batch {batch_size!s:>4}: {run.metrics['seconds_per_epoch']:.2f} s/epoch, "
          f"validation accuracy {run.metrics['final_val_accuracy']:.3f} after 10 epochs")

# %% [markdown]
# The lab measures the gradient's noise directly: minibatch gradients of one model against the
# full-batch gradient, for several batch sizes.

# %%
labkit.labs.run("gd-vs-sgd", quick=True)

# %% [markdown]
# **Try it:** with the same number of *epochs*, which batch size reaches the best validation
# accuracy? Which one needs the fewest *seconds*? Change the sizes and compare with the lab's
# verdict.

# %%
for batch_size in (8, 128):  # try 1, 16, 512, "full"
    run = labkit.train("mlp", dataset=DATASET, optimizer="sgd", learning_rate=0.05,
                       batch_size=batch_size, epochs=5, units=[64], echo=None)
    print(f"batch {batch_size}: val accuracy {run.metrics['final_val_accuracy']:.3f}, "
          f"{run.metrics['seconds_per_epoch']:.2f} s/epoch")

# %% [markdown]
# ## The learning rate ε (*inlärningstakt*, topic 2)
#
# Too small: it takes very long (*tar väldigt lång tid*); too large: the loss varies wildly
# (*varierar kraftigt*) or diverges. labkit stops a run whose loss explodes and says so.

# %%
labkit.labs.run("learning-rate", quick=True)

# %% [markdown]
# **Try it:** train with a rate of your choice and look at the curves (`run.plot()` draws them;
# the figure shows without `plt.show()`).

# %%
run = labkit.train("mlp", dataset=DATASET, optimizer="sgd", learning_rate=0.5,  # try 0.001, 5
                   epochs=10, units=[64])
print(run.metrics["status"])
run.plot()

# %% [markdown]
# ## Learning-rate schedules (topic 3)
#
# The gradient stays noisy even at a minimum, so SGD with a constant rate keeps bouncing. A
# schedule ε₁, ε₂, … that decreases converges in theory when
# Σ ε_k = ∞ (it can still travel any distance) and Σ ε_k² < ∞ (the noise it adds is finite).
# Partial sums over 100 000 steps show which schedules qualify:

# %%
k = np.arange(1, 100_001)
schedules = {"constant 0.1": np.full(k.shape, 0.1),
             "inverse time 0.1 / (1 + k/100)": 0.1 / (1 + k / 100),
             "exponential 0.1 · 0.99^k": 0.1 * 0.99 ** k}
for name, rate in schedules.items():
    print(f"{name:32} Σε = {rate.sum():9.1f}   Σε² = {(rate ** 2).sum():8.2f}")

# %% [markdown]
# The constant rate's Σε² grows without bound; exponential decay's Σε stops at 10, so it can
# stall before the minimum; inverse time (`--schedule "inverse-time(tau=…)"`) has both
# properties. The lab trains with each:

# %%
labkit.labs.run("lr-schedule", quick=True)

# %% [markdown]
# **Try it:** a schedule on the digits; `run.history` has the rate each epoch started with.

# %%
run = labkit.train("mlp", dataset=DATASET, optimizer="sgd", learning_rate=0.1, epochs=8,
                   schedule="inverse-time(tau=2)",  # try "exponential(rate=0.5, every=1)"
                   units=[64])
run.history[["epoch", "lr", "loss", "val_loss"]]

# %% [markdown]
# ## Vanishing and exploding gradients (topic 4)
#
# Backpropagation multiplies many derivatives: near zero and the product vanishes, too large
# and it explodes. Networks with ReLU often train better than sigmoid ones
# (*nätverk med ReLu fungerar ofta bättre*).

# %%
labkit.labs.run("vanishing-gradients", quick=True)

# %% [markdown]
# **Try it:** a deep sigmoid net against the same net with ReLU.

# %%
for activation in ("sigmoid", "relu"):  # try "tanh"
    run = labkit.train("mlp", dataset=DATASET, optimizer="sgd", learning_rate=0.1, epochs=5,
                       units=[32] * 6, activation=activation, echo=None)
    print(f"{activation:8} val accuracy {run.metrics['final_val_accuracy']:.3f}")

# %% [markdown]
# ## Momentum (topic 6)
#
# v ← αv − εĝ, θ ← θ + v: an exponentially decaying moving average of the gradients (*glidande
# medelvärde*), with α often 0.5, 0.9 or 0.99. On a narrow canyon (an ill-conditioned
# quadratic, Goodfellow fig. 8.5) plain steps bounce across it, momentum travels along it.
# Keras's `SGD(momentum=α)` makes exactly this update; here it runs on
# L(θ) = ½θᵀAθ, whose gradient Aθ we write down:

# %%
A = np.diag([1.0, 25.0]).astype("float32")  # curvature 1 along the canyon, 25 across it


def path(alpha: float, steps: int = 60, rate: float = 0.035) -> np.ndarray:
    theta = keras.Variable(np.array([-9.0, 1.5], "float32"))
    sgd = keras.optimizers.SGD(learning_rate=rate, momentum=alpha)
    points = [keras.ops.convert_to_numpy(theta)]
    for _ in range(steps):
        gradient = keras.ops.convert_to_tensor(A @ points[-1])
        sgd.apply_gradients([(gradient, theta)])
        points.append(keras.ops.convert_to_numpy(theta))
    return np.array(points)


grid = np.meshgrid(np.linspace(-10, 2, 200), np.linspace(-2.5, 2.5, 200))
plt.contour(*grid, 0.5 * (grid[0] ** 2 + 25 * grid[1] ** 2), levels=12, colors="lightgrey")
for alpha in (0.0, 0.5, 0.9):
    points = path(alpha)
    plt.plot(points[:, 0], points[:, 1], ".-", label=f"α = {alpha}: |θ| = "
             f"{np.linalg.norm(points[-1]):.3f} after 60 steps")
plt.legend(loc="lower right")
plt.title("SGD with momentum on a narrow canyon")
plt.show()

# %% [markdown]
# The lab counts the steps each α needs to reach the minimum:

# %%
labkit.labs.run("momentum", quick=True)

# %% [markdown]
# **Try it:** α = 0.99 keeps more of the history. How many steps does it need, and why does it
# overshoot?

# %%
alpha = 0.99  # try 0.5, 0.8, 0.95
points = path(alpha, steps=200)
distance = np.linalg.norm(points, axis=1)
print(f"α = {alpha}: |θ| < 0.01 first after {int(np.argmax(distance < 0.01))} steps"
      if (distance < 0.01).any() else f"α = {alpha}: not within 0.01 in 200 steps")

# %% [markdown]
# ## Start values (*startvärden*, topic 7)
#
# The weights must break the symmetry between the nodes (*bryta symmetri*): equal start values
# make all hidden units compute the same thing forever. Small random values (uniform or normal)
# train; biases are usually set to a constant. The initializer is a hyperparameter (Keras's
# *Initializers*), set on every recipe.

# %%
labkit.labs.run("initialization", quick=True)

# %% [markdown]
# **Try it:** all weights zero against small random ones.

# %%
for initializer in ("zeros", "random_normal(stddev=0.05)"):  # try "random_normal(stddev=5)"
    run = labkit.train("mlp", dataset=DATASET, epochs=5, units=[64],
                       kernel_initializer=initializer, echo=None)
    print(f"{initializer:28} val accuracy {run.metrics['final_val_accuracy']:.3f}")

# %% [markdown]
# ## Adaptive learning rates: RMSProp and Adam (topic 8)
#
# RMSProp divides each parameter's step by a moving average of its squared gradients: larger
# steps where the slope is flat, smaller where it is steep. Adam is roughly RMSProp with
# momentum. Both are common defaults (*vanliga standardval*).

# %%
labkit.labs.run("adaptive-optimizers", quick=True)

# %% [markdown]
# **Try it:** the four optimizers on the same net; `labkit.compare` lines the runs up.

# %%
trained = [labkit.train("mlp", dataset=DATASET, optimizer=name, epochs=5, units=[64],
                        echo=None)
           for name in ("sgd", "momentum", "rmsprop", "adam")]
labkit.compare(trained)
