"""Labs on regularisation (lecture topics 9–11): norm penalties, dropout, early stopping,
augmentation and ensembles, each on a small training set where overfitting shows."""

from __future__ import annotations

from labkit import seeding
from labkit._lazy import lazy_import
from labkit.labs._kit import (
    Finding,
    accuracy,
    accuracy_curves_noise,
    build,
    clean_train_accuracy,
    colours,
    compiled,
    curves,
    data_loss,
    digits,
    figure,
    finding,
    fit,
    keras,
    lab,
    late,
    late_noise,
    learning_curves,
    placed,
    save,
)

np = lazy_import("numpy")
pd = lazy_import("pandas")

SMALL = 100  # training examples (10 per class): small enough to overfit
NOISY = 0.2  # share of wrong training labels where a lab needs memorising to show plainly

# --- weight decay --------------------------------------------------------------------------

PENALTIES = [("none", 0.0), ("l2", 1e-3), ("l2", 1e-2), ("l1", 1e-3), ("l1", 1e-2)]


def _decay_verdict(f: pd.DataFrame) -> Finding:
    by = {(r.penalty, r.alpha): r for r in f.itertuples()}
    none, l2, l1 = by[("none", 0.0)], by[("l2", 1e-2)], by[("l1", 1e-2)]
    l2_small = by[("l2", 1e-3)]
    shrink = none.weight_norm > l2_small.weight_norm > l2.weight_norm
    narrower = l2 if l2.loss_gap < l1.loss_gap else l1
    return finding(
        f"{SMALL} training examples ({NOISY:.0%} mislabelled): ‖W‖ {none.weight_norm:.1f} "
        f"without penalty, {l2_small.weight_norm:.1f} / "
        f"{l2.weight_norm:.1f} with L2 α=1e-3 / 1e-2; weights below 1e-3: L1 {l1.sparsity:.0%}, "
        f"L2 {l2.sparsity:.0%} at α=1e-2; validation − training loss {none.loss_gap:.3f} → "
        f"{l2.loss_gap:.3f} (L2) / {l1.loss_gap:.3f} (L1); accuracy gap {none.gap:.3f} → "
        f"{l2.gap:.3f} / {l1.gap:.3f}",
        shrink and l1.sparsity > l2.sparsity and narrower.loss_gap < none.loss_gap,
        none.loss_gap / narrower.loss_gap,
        f"{narrower.penalty.upper()} α=1e-2 narrows the validation − training loss gap {{}}×",
        spec=".1f", null=1)


def _decay_plot(f: pd.DataFrame, path) -> None:
    fig, axes = figure(3)
    labels = [f"{p} {a:g}" if a else p for p, a in zip(f["penalty"], f["alpha"], strict=True)]
    for ax, column, title in zip(axes[0], ("weight_norm", "sparsity", "loss_gap"),
                                 ("‖W‖ (all kernels)", "share of |w| < 1e-3",
                                  "validation − training loss"), strict=True):
        ax.bar(labels, f[column], color=["grey"] + ["C0"] * 2 + ["C1"] * 2)
        ax.set(title=title)
        ax.tick_params(axis="x", rotation=30)
    save(fig, path)


@lab("weight-decay", order=8, topic=9, detail="L2, L1",
     claim="L2 and L1 penalties shrink the weights, L1 makes many exactly small (sparse), and "
           "the gap between training and validation loss narrows.",
     seconds=106, verdict=_decay_verdict, plot=_decay_plot)
def weight_decay(quick: bool, seed: int) -> pd.DataFrame:
    d = digits(n_train=SMALL, seed=seed, label_noise=NOISY)
    rows = []
    for penalty, alpha in PENALTIES:
        with seeding.seeded(seed):
            hp = {penalty: alpha} if alpha else {}
            model = compiled(build("mlp", units=[128], **hp), "adam", 0.01)
        fit(model, d, epochs=8 if quick else 150)
        kernels = np.concatenate([layer.kernel.numpy().ravel() for layer in model.layers
                                  if isinstance(layer, keras.layers.Dense)])
        train = accuracy(model, d["x_train"], d["y_train"])
        val = accuracy(model, d["x_val"], d["y_val"])
        train_loss, val_loss = (data_loss(model, d[f"x_{split}"], d[f"y_{split}"])
                                for split in ("train", "val"))
        rows.append({"penalty": penalty, "alpha": alpha,
                     "weight_norm": float(np.linalg.norm(kernels)),
                     "sparsity": float((np.abs(kernels) < 1e-3).mean()),
                     "train_accuracy": train, "val_accuracy": val, "gap": train - val,
                     "train_loss": train_loss, "val_loss": val_loss,
                     "loss_gap": val_loss - train_loss})
    return pd.DataFrame(rows)


# --- dropout -------------------------------------------------------------------------------

def _gap(part: pd.DataFrame) -> float:
    """Final training accuracy (inference mode) minus validation accuracy."""
    return float(part["train_accuracy"].iloc[-1] - part["val_accuracy"].iloc[-1])


def _dropout_verdict(f: pd.DataFrame) -> Finding:
    parts = dict(tuple(f.groupby("dropout")))
    rate = max(parts)
    settled = {k: float(late(p["val_loss"]).mean()) for k, p in parts.items()}
    rise = {k: settled[k] - float(p["val_loss"].min()) for k, p in parts.items()}
    return finding(
        f"{SMALL} training examples ({NOISY:.0%} mislabelled), {parts[rate]['epoch'].max():.0f} "
        f"epochs: validation loss over the last quarter {settled[0.0]:.3f} without dropout, "
        f"{settled[rate]:.3f} with {rate:g}; that is {rise[0.0]:.3f} vs {rise[rate]:.3f} above "
        f"its minimum (overfitting); train−validation accuracy gap {_gap(parts[0.0]):.2f} vs "
        f"{_gap(parts[rate]):.2f}",
        rise[rate] < rise[0.0], rise[0.0] - rise[rate],
        f"dropout {rate:g} keeps the validation loss {{}} less far above its minimum",
        spec=".3f", noise=late_noise(parts[0.0]["val_loss"], parts[rate]["val_loss"]))


def _dropout_plot(f: pd.DataFrame, path) -> None:
    fig, axes = figure(2)
    colour = colours(f["dropout"])
    for name, part in f.groupby("dropout", sort=False):
        for column, style in (("loss", "--"), ("val_loss", "-")):
            axes[0, 0].plot(part["epoch"], part[column], style, color=colour[name],
                            label=f"dropout {name:g} {column}")
    axes[0, 0].set(xlabel="epoch", ylabel="loss", title="training (--) and validation (—)",
                   yscale="log")
    axes[0, 0].legend(fontsize=8)
    curves(axes[0, 1], f, "dropout", "val_accuracy", title="validation accuracy")
    save(fig, path)


@lab("dropout", order=9, topic=10,
     claim="On a small training set, dropout keeps the validation loss from rising as the "
           "net overfits.", seconds=52, verdict=_dropout_verdict, plot=_dropout_plot)
def dropout(quick: bool, seed: int) -> pd.DataFrame:
    d = digits(n_train=SMALL, seed=seed, label_noise=NOISY)
    frames = []
    for rate in (0.0, 0.5):
        with seeding.seeded(seed):
            model = compiled(build("mlp", units=[512, 512], dropout=rate), "adam", 1e-3)
        clean = clean_train_accuracy(d)
        frame = fit(model, d, epochs=15 if quick else 100, batch_size=16, callbacks=[clean])
        frames.append(frame.assign(dropout=rate, train_accuracy=clean.values))
    return pd.concat(frames)[["dropout", "epoch", "loss", "train_accuracy", "val_loss",
                              "val_accuracy"]]


# --- early stopping -----------------------------------------------------------------------

def _stopping_verdict(f: pd.DataFrame) -> Finding:
    full = f[f["run"] == "no stopping"]
    early = f[f["run"] == "early stopping"]
    stopped = int(early["epoch"].max())
    restored = early[early["restored"]]
    r_epoch, r_loss = int(restored["epoch"].iloc[0]), float(restored["restored_val_loss"].iloc[0])
    final = float(full["val_loss"].iloc[-1])
    return finding(
        f"stopped at epoch {stopped} of {int(full['epoch'].max())}; weights restored from epoch "
        f"{r_epoch} have validation loss {r_loss:.3f}, training on to the end gives {final:.3f} "
        f"(its minimum {full['val_loss'].min():.3f} at epoch "
        f"{int(full.loc[full['val_loss'].idxmin(), 'epoch'])})",
        r_loss < final and stopped < full["epoch"].max(), final - r_loss,
        "the restored weights' validation loss is {} lower than training to the end's",
        spec=".3f", noise=late_noise(full["val_loss"]))


def _stopping_plot(f: pd.DataFrame, path) -> None:
    fig, axes = figure(1, size=(6, 4))
    ax = axes[0, 0]
    full = f[f["run"] == "no stopping"]
    early = f[f["run"] == "early stopping"]
    ax.plot(full["epoch"], full["loss"], "--", color="grey", label="training")
    ax.plot(full["epoch"], full["val_loss"], color="C0", label="validation")
    ax.axvline(early["epoch"].max(), color="C3", linestyle=":", label="stopped")
    restored = early[early["restored"]]
    ax.plot(restored["epoch"], restored["restored_val_loss"], "*", color="C3", markersize=14,
            label="restored weights")
    ax.set(xlabel="epoch", ylabel="loss", yscale="log", title="early stopping (patience 10)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    save(fig, path)


@lab("early-stopping", order=10, topic=11, detail="early stopping",
     claim="Validation loss falls, then rises as the net overfits; stopping when it stops "
           "improving and restoring the best weights beats training to the end.",
     seconds=40, verdict=_stopping_verdict, plot=_stopping_plot)
def early_stopping(quick: bool, seed: int) -> pd.DataFrame:
    from labkit.callbacks import EarlyStopping

    d = digits(n_train=SMALL, seed=seed)
    epochs = 40 if quick else 300
    frames = []
    for name in ("no stopping", "early stopping"):
        with seeding.seeded(seed):
            model = compiled(build("mlp", units=[256, 256]), "adam", 3e-3)
        stop = EarlyStopping(monitor="val_loss", patience=10, restore_best_weights=True)
        frame = fit(model, d, epochs=epochs, batch_size=16,
                    callbacks=[stop] if name == "early stopping" else [])
        frame = frame.assign(run=name, restored=False, restored_val_loss=np.nan)
        if name == "early stopping":
            restored = model.evaluate(d["x_val"], d["y_val"], verbose=0, return_dict=True)
            at = frame["epoch"] == stop.best_epoch + 1
            frame.loc[at, "restored"] = True
            frame.loc[at, "restored_val_loss"] = restored["loss"]
        frames.append(frame)
    return pd.concat(frames)[["run", "epoch", "loss", "val_loss", "val_accuracy", "restored",
                              "restored_val_loss"]]


# --- augmentation -------------------------------------------------------------------------

CANVAS = 12  # digits anywhere on a 12×12 black canvas: up to 4 pixels' play each way
AUGMENT = {"translation": 0.2, "fill": "constant"}  # shifts up to ±2.4 pixels, black uncovered


def _augment_verdict(f: pd.DataFrame) -> Finding:
    parts = dict(tuple(f.groupby("augment", sort=False)))
    best = {k: float(p["val_accuracy"].max()) for k, p in parts.items()}
    settled = {k: float(late(p["val_accuracy"]).mean()) for k, p in parts.items()}
    return finding(
        f"{SMALL} training images, digits anywhere on a {CANVAS}×{CANVAS} canvas: best "
        f"validation accuracy {best['none']:.3f} without, "
        f"{best['augmented']:.3f} with augmentation; mean over the last quarter of training "
        f"{settled['none']:.3f} vs {settled['augmented']:.3f}; final train−validation gap "
        f"{_gap(parts['none']):.2f} vs {_gap(parts['augmented']):.2f}",
        best["augmented"] > best["none"] and settled["augmented"] > settled["none"],
        settled["augmented"] - settled["none"],
        "augmentation adds {} validation accuracy over the last quarter of training",
        spec=".3f", noise=accuracy_curves_noise(parts["none"]["val_accuracy"],
                                                parts["augmented"]["val_accuracy"],
                                                int(f["val_examples"].iloc[0])))


@lab("augmentation", order=11, topic=11, detail="data augmentation",
     claim="On a small image training set, random shifts of the training images improve "
           "validation accuracy when the object may be anywhere in the image.",
     seconds=46, verdict=_augment_verdict, plot=learning_curves(
         "augment", ("train_accuracy", "training accuracy", False),
         ("val_accuracy", "validation accuracy", False)))
def augmentation(quick: bool, seed: int) -> pd.DataFrame:
    d = digits(n_train=SMALL, seed=seed)
    rng = np.random.default_rng(seed)
    for split in ("train", "val"):
        d[f"x_{split}"], d[f"y_{split}"] = placed(d[f"x_{split}"], d[f"y_{split}"], rng, CANVAS)
    epochs = 12 if quick else 100
    frames = []
    for name in ("none", "augmented"):
        with seeding.seeded(seed):
            model = compiled(build("cnn", filters=[16, 32], dropout=0.25,
                                   input_shape=(CANVAS, CANVAS, 1)), "adam", 2e-3)
        clean = clean_train_accuracy(d)
        frame = fit(model, d, epochs=epochs, batch_size=16, callbacks=[clean], seed=seed,
                    augment=AUGMENT if name == "augmented" else None)
        frames.append(frame.assign(augment=name, train_accuracy=clean.values))
    return pd.concat(frames)[["augment", "epoch", "loss", "train_accuracy", "val_loss",
                              "val_accuracy", "val_examples"]]


# --- ensembles ----------------------------------------------------------------------------

MEMBERS = 5


def _ensemble_verdict(f: pd.DataFrame) -> Finding:
    members = f[f["model"] != "ensemble"]["test_accuracy"]
    ensemble = float(f[f["model"] == "ensemble"]["test_accuracy"].iloc[0])
    return finding(f"{len(members)} nets from different start values, {SMALL} training images "
                   f"({NOISY:.0%} mislabelled): members' test accuracy "
                   f"{members.min():.3f}–{members.max():.3f} (mean {members.mean():.3f}), "
                   f"averaged ensemble {ensemble:.3f}", ensemble > members.mean(),
                   ensemble - members.mean(), "the ensemble is {} more accurate than the "
                   "mean member", spec=".3f", noise=float(members.std() / np.sqrt(len(members))))


def _ensemble_plot(f: pd.DataFrame, path) -> None:
    fig, axes = figure(1, size=(6, 3.6))
    colors = ["C3" if m == "ensemble" else "C0" for m in f["model"]]
    axes[0, 0].bar(f["model"], f["test_accuracy"], color=colors)
    low = f["test_accuracy"].min()
    axes[0, 0].set(ylim=(max(0, low - 0.05), 1), ylabel="test accuracy",
                   title="members vs their averaged predictions")
    save(fig, path)


@lab("ensemble", order=12, topic=11, detail="ensembles",
     claim="Averaging K networks trained from different start values is more accurate than "
           "a typical member.", seconds=36, verdict=_ensemble_verdict, plot=_ensemble_plot)
def ensemble(quick: bool, seed: int) -> pd.DataFrame:
    d = digits(n_train=SMALL, seed=seed, label_noise=NOISY)
    probabilities, rows = [], []
    for k in range(MEMBERS):
        with seeding.seeded(seed + k):
            model = compiled(build("mlp", units=[64]), "adam", 3e-3)
        fit(model, d, epochs=6 if quick else 60)
        p = model.predict(d["x_test"], verbose=0)
        probabilities.append(p)
        rows.append({"model": f"member {k + 1}",
                     "test_accuracy": float((p.argmax(1) == d["y_test"]).mean())})
    mean = np.mean(probabilities, axis=0)
    rows.append({"model": "ensemble",
                 "test_accuracy": float((mean.argmax(1) == d["y_test"]).mean())})
    return pd.DataFrame(rows)
