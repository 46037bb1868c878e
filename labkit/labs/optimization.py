"""Labs on optimisation (lecture topics 1–3, 6, 8): gradient estimates, step sizes, schedules,
momentum and adaptive optimisers."""

from __future__ import annotations

import time

from labkit import seeding
from labkit._lazy import lazy_import
from labkit.labs._kit import (
    Finding,
    build,
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

# --- full batch vs minibatch ---------------------------------------------------------------


def _gd_verdict(f: pd.DataFrame) -> Finding:
    mini = f[f["batch_size"] < f["batch_size"].max()].sort_values("batch_size")
    full = f.loc[f["batch_size"].idxmax()]
    small, large = mini.iloc[0], mini.iloc[-1]
    falling = bool((np.diff(mini["grad_variance"]) < 0).all())
    ratio = small["grad_variance"] / large["grad_variance"]
    predicted = large["batch_size"] / small["batch_size"]
    return finding(
        f"gradient variance {small['grad_variance']:.3g} at batch {small['batch_size']:.0f}, "
        f"{large['grad_variance']:.3g} at {large['batch_size']:.0f} (÷{ratio:.0f}; 1/B predicts "
        f"÷{predicted:.0f}), 0 for the full batch of {full['batch_size']:.0f}; a step costs "
        f"{small['ms_per_step']:.2f} ms at batch {small['batch_size']:.0f} and "
        f"{full['ms_per_step']:.2f} ms for the full batch",
        falling and full["ms_per_step"] > small["ms_per_step"], ratio,
        f"the variance falls ÷{{}} from batch {small['batch_size']:.0f} to "
        f"{large['batch_size']:.0f} (1/B predicts ÷{predicted:.0f})", spec=".0f", null=1)


def _gd_plot(f: pd.DataFrame, path) -> None:
    fig, axes = figure(2)
    mini = f[f["grad_variance"] > 0]
    axes[0, 0].loglog(mini["batch_size"], mini["grad_variance"], "o-", label="measured")
    reference = mini["grad_variance"].iloc[0] * mini["batch_size"].iloc[0] / mini["batch_size"]
    axes[0, 0].loglog(mini["batch_size"], reference, "--", label="∝ 1/B")
    axes[0, 0].set(xlabel="batch size B", ylabel="E‖g_B − g‖²", title="variance of the gradient")
    axes[0, 0].legend()
    axes[0, 1].loglog(f["batch_size"], f["ms_per_step"], "o-")
    axes[0, 1].set(xlabel="batch size B", ylabel="ms per step", title="cost per step")
    for ax in axes[0]:
        ax.grid(alpha=0.3)
    save(fig, path)


@lab("gd-vs-sgd", order=1, topic=(1, 2),
     claim="A minibatch gradient is a noisy estimate of the full-batch gradient whose variance "
           "falls like 1/B, while a full-batch step costs the most.",
     seconds=7, verdict=_gd_verdict, plot=_gd_plot)
def gd_vs_sgd(quick: bool, seed: int) -> pd.DataFrame:
    import tensorflow as tf

    d = digits()
    x, y = tf.constant(d["x_train"]), tf.constant(d["y_train"])
    model = build("mlp", units=[64])
    loss_fn = keras.losses.SparseCategoricalCrossentropy()

    @tf.function(reduce_retracing=True)
    def gradient(xb, yb):
        with tf.GradientTape() as tape:
            loss = loss_fn(yb, model(xb, training=True))
        return tf.concat([tf.reshape(g, [-1]) for g in tape.gradient(
            loss, model.trainable_variables)], axis=0)

    n = len(d["y_train"])
    full = gradient(x, y).numpy()
    rng = np.random.default_rng(seed)
    draws = 20 if quick else 200
    rows = []
    for batch in [1, 4, 16, 64, 256, n]:
        gradient(x[:batch], y[:batch])  # trace once before timing
        variance, start = 0.0, time.perf_counter()
        for _ in range(draws if batch < n else 5):
            idx = rng.choice(n, size=batch, replace=False)
            g = gradient(tf.gather(x, idx), tf.gather(y, idx)).numpy()
            variance += float(((g - full) ** 2).sum())
        count = draws if batch < n else 5
        rows.append({"batch_size": batch, "steps_per_epoch": int(np.ceil(n / batch)),
                     "grad_variance": variance / count if batch < n else 0.0,
                     "ms_per_step": 1000 * (time.perf_counter() - start) / count})
    return pd.DataFrame(rows)


# --- learning rate -------------------------------------------------------------------------

LEARNING_RATES = (0.001, 0.1, 1.0, 3.0)


def _lr_verdict(f: pd.DataFrame) -> Finding:
    last = f.groupby("learning_rate")["loss"].last()
    first = f.groupby("learning_rate")["loss"].first()
    best = last.idxmin()
    small, large = last.index.min(), last.index.max()
    ups = f[f["learning_rate"] == large]["loss"].diff().gt(0).sum()
    parts = ", ".join(f"ε={lr:g}: {first[lr]:.3g} → {last[lr]:.3g}" for lr in last.index)
    ok = small < best < large and last[small] > last[best] and (
        not np.isfinite(last[large]) or last[large] > last[best])
    return finding(f"training loss per ε (first → last epoch): {parts}; the best is "
                   f"ε={best:g}; ε={large:g} went up in {ups} epochs", ok,
                   last[small] / last[best], f"ε={small:g} ends with {{}}× the loss of ε={best:g}",
                   spec=".1f", null=1)


@lab("learning-rate", order=2, topic=2, detail="the learning rate",
     claim="Too small a learning rate learns slowly, a good one fast, too large a one "
           "oscillates or diverges.", seconds=29, verdict=_lr_verdict,
     plot=learning_curves("learning_rate", ("loss", "training loss, SGD", True)))
def learning_rate(quick: bool, seed: int) -> pd.DataFrame:
    d = digits()
    frames = []
    for lr in LEARNING_RATES:
        with seeding.seeded(seed):
            model = compiled(build("mlp", units=[64]), "sgd", lr)
        frame = fit(model, d, epochs=4 if quick else 30, batch_size=32)
        frames.append(frame.assign(learning_rate=lr))
    return pd.concat(frames)[["learning_rate", "epoch", "loss", "accuracy", "val_loss",
                              "val_accuracy"]]


# --- schedules -----------------------------------------------------------------------------

def _schedule_verdict(f: pd.DataFrame) -> Finding:
    const = f[f["schedule"] == "constant"]["weight_error"]
    decay = f[f["schedule"] == "inverse-time"]
    floor = const.iloc[len(const) // 2:]  # the second half: where a constant rate has settled
    final = float(decay["weight_error"].iloc[-1])
    return finding(
        f"‖w − w*‖² with constant ε hovers at {floor.mean():.2e} (range {floor.min():.2e}–"
        f"{floor.max():.2e}) over the second half of {len(const)} epochs; inverse-time ends at "
        f"{final:.2e} (Σε = {decay['sum_lr'].iloc[-1]:.2f} still growing, Σε² = "
        f"{decay['sum_lr2'].iloc[-1]:.4f} levelling off)",
        final < floor.min() and final < floor.mean() / 2, floor.mean() / final,
        "inverse-time ends {}× closer to the minimum than the constant rate's floor",
        spec=".1f", null=1, noise=float(floor.std() / final))


@lab("lr-schedule", order=3, topic=3,
     claim="With a constant rate SGD stalls at a noise floor near the minimum; a schedule with "
           "Σε = ∞ and Σε² < ∞ keeps approaching it.",
     seconds=23, verdict=_schedule_verdict, plot=learning_curves(
         "schedule", ("weight_error", "distance to the minimum ‖w − w*‖²", True),
         ("lr", "learning rate", True)))
def lr_schedule(quick: bool, seed: int) -> pd.DataFrame:
    from labkit import optim
    from labkit.data import pipeline

    rng = np.random.default_rng(seed)
    n, dim, batch = 512, 5, 4
    w_true = rng.normal(size=(dim, 1)).astype("float32")
    x = rng.normal(size=(n, dim)).astype("float32")
    y = x @ w_true + rng.normal(scale=1.0, size=(n, 1)).astype("float32")
    w_best = np.linalg.lstsq(x, y, rcond=None)[0]  # the minimum of the training loss
    epochs, steps = (6 if quick else 40), n // batch
    frames = []
    for name in ("constant", "inverse-time(tau=1)"):
        with seeding.seeded(seed):
            schedule = optim.resolve_schedule(name)
            model = keras.Sequential([keras.Input((dim,)), keras.layers.Dense(1, use_bias=False)])
        model.compile(optimizer=optim.make("sgd", 0.05, schedule=schedule,
                                           steps_per_epoch=steps), loss="mse")
        errors, rates = [], []

        def track(epoch, logs, model=model, errors=errors, rates=rates):
            errors.append(float(((model.get_weights()[0] - w_best) ** 2).sum()))
            rates.append(float(keras.ops.convert_to_numpy(model.optimizer.learning_rate)))

        batches = pipeline.training_batches((x, y), batch, seed=seed)  # a new order each epoch
        history = model.fit(batches, epochs=epochs, verbose=0, shuffle=False,
                            callbacks=[keras.callbacks.LambdaCallback(on_epoch_end=track)])
        lr_start = [optim.expected_learning_rate(0.05, schedule, e) for e in range(epochs)]
        per_step = [sum(optim.expected_learning_rate(0.05, schedule, e + s / steps) ** p
                        for s in range(steps)) for e in range(epochs) for p in (1, 2)]
        frames.append(pd.DataFrame({
            "schedule": schedule["name"], "epoch": np.arange(1, epochs + 1), "lr": lr_start,
            "sum_lr": np.cumsum(per_step[0::2]), "sum_lr2": np.cumsum(per_step[1::2]),
            "loss": history.history["loss"], "weight_error": errors}))
    return pd.concat(frames)


# --- momentum ------------------------------------------------------------------------------

CANYON = (1.0, 100.0)  # f(θ) = ½ Σ cᵢ θᵢ²: a long narrow valley (condition number 100)
RATE = 0.019  # just under 2/100: SGD zigzags across the valley
START = (-10.0, 1.5)
TARGET = 1e-3


def _steps_to_target(part: pd.DataFrame) -> int | None:
    hit = part[part["loss"] < TARGET]
    return int(hit["step"].iloc[0]) if len(hit) else None


def _momentum_verdict(f: pd.DataFrame) -> Finding:
    steps = {name: _steps_to_target(part) for name, part in f.groupby("optimizer", sort=False)}
    budget = int(f["step"].max())

    def show(name):
        return f"{steps[name]} steps" if steps[name] is not None else f"not in {budget}"

    sgd, best = steps.get("sgd"), steps.get("momentum α=0.9")
    others = ", ".join(f"{name}: {show(name)}" for name in steps
                       if name not in ("sgd", "momentum α=0.9"))
    ok = best is not None and (sgd is None or best < sgd)
    ratio = (sgd or budget) / (best or budget)  # a lower bound when SGD never got there
    return finding(f"momentum α=0.9 reached loss < {TARGET:g} in {show('momentum α=0.9')}, SGD "
                   f"in {show('sgd')} ({others})", ok, ratio,
                   ("momentum α=0.9 needs {}× fewer steps" if sgd else
                    "momentum α=0.9 needs at least {}× fewer steps"), spec=".1f", null=1)


def _momentum_plot(f: pd.DataFrame, path) -> None:
    fig, axes = figure(2, size=(5.5, 4.6))
    grid = np.meshgrid(np.linspace(-11, 11, 200), np.linspace(-2, 2, 200))
    levels = 0.5 * (CANYON[0] * grid[0] ** 2 + CANYON[1] * grid[1] ** 2)
    ax = axes[0, 0]
    ax.contour(grid[0], grid[1], levels, levels=np.geomspace(0.01, 100, 12), cmap="Greys")
    parts = list(f[f["step"] <= 100].groupby("optimizer", sort=False))
    colours = {name: f"C{i}" for i, (name, _) in enumerate(parts)}
    # the widest-swinging path (largest α) first and faint, so it cannot cover the others
    for rank, (name, part) in enumerate(sorted(parts, key=lambda p: -float(np.ptp(p[1]["y"])))):
        ax.plot(part["x"], part["y"], ".-", markersize=2, linewidth=0.8, label=name,
                color=colours[name], alpha=0.35 if rank == 0 else 1.0, zorder=2 + rank)
    ax.set(xlabel="θ₁", ylabel="θ₂", title="first 100 steps over f(θ) = ½(θ₁² + 100 θ₂²)",
           ylim=(-2, 2))
    handles, labels = ax.get_legend_handles_labels()
    order = [labels.index(name) for name, _ in parts]
    ax.legend([handles[i] for i in order], [labels[i] for i in order], fontsize=8,
              loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2, frameon=False)
    curves(axes[0, 1], f, "optimizer", "loss", title="f(θ) per step", log=True)
    save(fig, path)


@lab("momentum", order=4, topic=6,
     claim="On an ill-conditioned quadratic, momentum travels along the narrow canyon instead "
           "of bouncing across it, reaching the minimum in far fewer steps than SGD.",
     seconds=4, verdict=_momentum_verdict, plot=_momentum_plot)
def momentum(quick: bool, seed: int) -> pd.DataFrame:
    import tensorflow as tf

    from labkit import optim

    steps = 300 if quick else 1000
    curvature = tf.constant(CANYON, "float32")
    rows = []
    for name, alpha in [("sgd", 0.0), ("momentum α=0.5", 0.5), ("momentum α=0.9", 0.9),
                        ("momentum α=0.99", 0.99)]:
        theta = keras.Variable(np.array(START, dtype="float32"))
        opt = optim.make("momentum" if alpha else "sgd", RATE,
                         {"momentum": alpha} if alpha else None)

        opt.build([theta])
        step = _compiled_step(opt, theta, curvature)
        for k in range(steps + 1):
            value = theta.numpy()
            rows.append({"optimizer": name, "alpha": alpha, "step": k, "x": value[0],
                         "y": value[1], "loss": float(0.5 * (np.array(CANYON) * value ** 2).sum())})
            step()
    return pd.DataFrame(rows)


def _compiled_step(opt, theta, curvature):
    """One optimizer step on f(θ) = ½ θᵀCθ (gradient Cθ), as a compiled TensorFlow function."""
    import tensorflow as tf

    @tf.function
    def step():
        opt.apply_gradients([(curvature * theta, theta)])

    return step


# --- adaptive optimisers -------------------------------------------------------------------

ADAPTIVE = ("sgd", "momentum", "rmsprop", "adam")


def _adaptive_verdict(f: pd.DataFrame) -> Finding:
    last = f.groupby("optimizer", sort=False).last()
    order = last["loss"].sort_values()
    ranking = ", ".join(f"{name} {loss:.3f}" for name, loss in order.items())
    others = ("momentum", "rmsprop", "adam")
    slowest = max(others, key=lambda name: last.loc[name, "loss"])
    curve = {name: part["loss"] for name, part in f.groupby("optimizer", sort=False)}
    return finding(f"final training loss after {last['epoch'].max():.0f} epochs at each "
                   f"optimizer's default rate: {ranking}",
                   all(last.loc[name, "loss"] < last.loc["sgd", "loss"] for name in others),
                   last.loc["sgd", "loss"] - last.loc[slowest, "loss"],
                   f"the slowest of them ({slowest}) ends {{}} below SGD's training loss",
                   spec=".3f", noise=late_noise(curve["sgd"], curve[slowest]))


@lab("adaptive-optimizers", order=7, topic=8, detail="RMSProp, Adam",
     claim="Momentum, RMSProp and Adam train the same CNN faster than plain SGD.",
     seconds=29, verdict=_adaptive_verdict, plot=learning_curves(
         "optimizer", ("loss", "training loss", True),
         ("val_accuracy", "validation accuracy", False)))
def adaptive_optimizers(quick: bool, seed: int) -> pd.DataFrame:
    d = digits()
    frames = []
    for name in ADAPTIVE:
        with seeding.seeded(seed):
            model = compiled(build("cnn", filters=[16, 32]), name)
        frames.append(fit(model, d, epochs=3 if quick else 15).assign(optimizer=name))
    return pd.concat(frames)[["optimizer", "epoch", "loss", "accuracy", "val_loss",
                              "val_accuracy"]]
