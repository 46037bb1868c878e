"""Labs on training deep nets (lecture topics 4, 7, 12): vanishing gradients, start values and
skip connections."""

from __future__ import annotations

from labkit import seeding
from labkit._lazy import lazy_import
from labkit.labs._kit import (
    Finding,
    accuracy_curves_noise,
    build,
    colours,
    compiled,
    curves,
    digits,
    figure,
    finding,
    fit,
    keras,
    lab,
    late_noise,
    learning_curves,
    save,
)

np = lazy_import("numpy")
pd = lazy_import("pandas")

# --- vanishing gradients -------------------------------------------------------------------

DEPTH = 8


def _gradient_norms(model, x, y) -> list[float]:
    """‖∂L/∂W‖ of each Dense kernel, input side first."""
    import tensorflow as tf

    loss_fn = keras.losses.SparseCategoricalCrossentropy()
    kernels = [layer.kernel for layer in model.layers if isinstance(layer, keras.layers.Dense)]
    with tf.GradientTape() as tape:
        loss = loss_fn(y, model(x, training=True))
    return [float(tf.norm(g)) for g in tape.gradient(loss, kernels)]


def _vanishing_verdict(f: pd.DataFrame) -> Finding:
    start = f[f["stage"] == "init"]

    def ratio(activation):
        part = start[start["activation"] == activation].sort_values("layer")
        return part["grad_norm"].iloc[0] / part["grad_norm"].iloc[-2]  # first vs last hidden

    sig, relu = ratio("sigmoid"), ratio("relu")
    trained = f[f["stage"] == "trained"].groupby("activation")["loss"].first()
    return finding(f"at initialisation layer 1's gradient norm is {sig:.2g} × layer {DEPTH}'s "
                   f"with sigmoid, {relu:.2g} × with ReLU; training loss after training: "
                   f"sigmoid {trained['sigmoid']:.3f}, ReLU {trained['relu']:.3f}",
                   sig < relu / 10 and trained["relu"] < trained["sigmoid"], relu / sig,
                   "layer 1's gradient, relative to the last layer's, is {}× smaller with "
                   "sigmoid than with ReLU", spec=".0f", null=1)


def _vanishing_plot(f: pd.DataFrame, path) -> None:
    fig, axes = figure(1, size=(6, 4))
    ax = axes[0, 0]
    colour = colours(f["activation"])  # one per activation; the stage is the line style
    for (activation, stage), part in f.groupby(["activation", "stage"], sort=False):
        ax.semilogy(part["layer"], part["grad_norm"], "o-" if stage == "init" else "s--",
                    color=colour[activation], label=f"{activation}, {stage}")
    ax.set(xlabel="layer (1 = next to the input)", ylabel="‖∂L/∂W‖",
           title=f"gradient norm per layer, {DEPTH} hidden layers")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    save(fig, path)


@lab("vanishing-gradients", order=5, topic=4, detail="ReLU vs sigmoid",
     claim="In a deep sigmoid net the gradient shrinks layer by layer towards the input, so "
           "early layers barely learn; ReLU nets suffer much less.",
     seconds=16, verdict=_vanishing_verdict, plot=_vanishing_plot)
def vanishing_gradients(quick: bool, seed: int) -> pd.DataFrame:
    d = digits()
    x, y = d["x_train"][:256], d["y_train"][:256]
    rows = []
    for activation in ("sigmoid", "relu"):
        with seeding.seeded(seed):
            model = compiled(build("mlp", units=[32] * DEPTH, activation=activation), "sgd", 0.1)
        for stage in ("init", "trained"):
            loss = np.nan
            if stage == "trained":
                loss = fit(model, d, epochs=3 if quick else 30)["loss"].iloc[-1]
            for layer, norm in enumerate(_gradient_norms(model, x, y), 1):
                rows.append({"activation": activation, "stage": stage, "layer": layer,
                             "grad_norm": norm, "loss": loss})
    return pd.DataFrame(rows)


# --- initialisation ------------------------------------------------------------------------

STARTS = {"equal (constant 0.1)": "constant(0.1)",
          "too large (normal σ=5)": "random_normal(stddev=5.0)",
          "small random (Glorot)": "glorot_uniform"}


def _unit_spread():
    """A callback recording how different the first hidden layer's units are: the largest
    standard deviation, across units, of any incoming weight; read ``.spread`` after fitting."""

    class UnitSpread(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.spread: list[float] = []

        def on_epoch_end(self, epoch, logs=None):
            kernel = next(layer for layer in self.model.layers
                          if isinstance(layer, keras.layers.Dense)).get_weights()[0]
            self.spread.append(float(kernel.std(axis=1).max()))

    return UnitSpread()


def _init_verdict(f: pd.DataFrame) -> Finding:
    last = f.groupby("start", sort=False).last()
    first = f.groupby("start", sort=False).first()
    equal, large, small = (last.loc[name] for name in STARTS)
    large_name, small_name = list(STARTS)[1:]
    runner_up = max(STARTS, key=lambda name: last.loc[name, "val_accuracy"] if name != small_name
                    else -1)
    accuracy = {name: part["val_accuracy"] for name, part in f.groupby("start", sort=False)}
    return finding(
        f"equal start: hidden units differ by {equal['unit_spread']:.1e} after "
        f"{equal['epoch']:.0f} epochs (identical), val accuracy {equal['val_accuracy']:.2f}; too "
        f"large: first-epoch loss {first.loc[large_name, 'loss']:.3g}, val accuracy "
        f"{large['val_accuracy']:.2f}; small random: loss {small['loss']:.3f}, val accuracy "
        f"{small['val_accuracy']:.2f}",
        equal["unit_spread"] < 1e-6 and small["val_accuracy"] > equal["val_accuracy"]
        and small["val_accuracy"] > large["val_accuracy"]
        and first.loc[large_name, "loss"] > 10 * first.loc[small_name, "loss"],
        small["val_accuracy"] - last.loc[runner_up, "val_accuracy"],
        f"small random start values reach {{}} more validation accuracy than {runner_up}",
        noise=accuracy_curves_noise(accuracy[small_name], accuracy[runner_up],
                                    int(f["val_examples"].iloc[0])))


def _init_plot(f: pd.DataFrame, path) -> None:
    fig, axes = figure(3)
    curves(axes[0, 0], f, "start", "loss", title="training loss", log=True)
    curves(axes[0, 1], f, "start", "val_accuracy", title="validation accuracy")
    curves(axes[0, 2], f.assign(unit_spread=f["unit_spread"] + 1e-12), "start", "unit_spread",
           title="spread between hidden units", log=True)
    save(fig, path)


@lab("initialization", order=6, topic=7,
     claim="Equal start values leave all hidden units identical (no symmetry breaking); too "
           "large values explode; small random values train.",
     seconds=25, verdict=_init_verdict, plot=_init_plot)
def initialization(quick: bool, seed: int) -> pd.DataFrame:
    d = digits()
    frames = []
    for name, start in STARTS.items():
        with seeding.seeded(seed):
            model = compiled(build("mlp", units=[32, 32], kernel_initializer=start), "sgd", 0.1)
        spread = _unit_spread()
        frame = fit(model, d, epochs=4 if quick else 30, callbacks=[spread])
        frames.append(frame.assign(start=name, unit_spread=spread.spread))
    return pd.concat(frames)[["start", "epoch", "loss", "accuracy", "val_loss", "val_accuracy",
                              "unit_spread", "val_examples"]]


# --- residual connections -----------------------------------------------------------------

BLOCKS = 12  # 25 conv layers, batch normalisation in both nets


def _residual_verdict(f: pd.DataFrame) -> Finding:
    last = f.groupby("net", sort=False).last()
    plain, skip = last.loc["plain"], last.loc["residual"]
    loss = {name: part["loss"] for name, part in f.groupby("net", sort=False)}
    return finding(f"{2 * BLOCKS + 1} conv layers, after {skip['epoch']:.0f} epochs: training "
                   f"loss plain {plain['loss']:.3f} vs residual {skip['loss']:.3f}, validation "
                   f"accuracy {plain['val_accuracy']:.2f} vs {skip['val_accuracy']:.2f}",
                   skip["loss"] < plain["loss"], plain["loss"] - skip["loss"],
                   "skip connections end {} lower in training loss", spec=".3f",
                   noise=late_noise(loss["plain"], loss["residual"]))


@lab("residual", order=17, topic=12, detail="residual nets",
     claim="A deep plain net (25 conv layers, batch-normalised) trains worse than the same "
           "depth with skip connections.",
     seconds=66, verdict=_residual_verdict, plot=learning_curves(
         "net", ("loss", "training loss", True), ("val_accuracy", "validation accuracy", False)))
def residual(quick: bool, seed: int) -> pd.DataFrame:
    d = digits()
    frames = []
    for name, skip in (("plain", False), ("residual", True)):
        with seeding.seeded(seed):
            model = compiled(build("resnet", blocks=[BLOCKS], width=16, skip=skip), "sgd", 0.05)
        frames.append(fit(model, d, epochs=1 if quick else 12).assign(net=name))
    return pd.concat(frames)[["net", "epoch", "loss", "accuracy", "val_loss", "val_accuracy"]]
