"""Labs on convolutional networks (lecture topics 12, 14–15, 18, 20–21): the convolution itself,
padding and stride, parameter sharing, and transfer learning."""

from __future__ import annotations

from labkit import seeding
from labkit._lazy import lazy_import
from labkit.labs._kit import (
    Finding,
    accuracy,
    accuracy_noise,
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
    placed,
    save,
)

np = lazy_import("numpy")
pd = lazy_import("pandas")

# --- the convolution ----------------------------------------------------------------------


def cross_correlate(x: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Valid 2-D cross-correlation by hand: S(i, j) = Σₘ Σₙ I(i + m, j + n) K(m, n), no flip
    (the lecture's fig. 9.1; what deep-learning libraries call convolution)."""
    kh, kw = kernel.shape
    out = np.zeros((x.shape[0] - kh + 1, x.shape[1] - kw + 1))
    for i in range(out.shape[0]):
        for j in range(out.shape[1]):
            out[i, j] = (x[i:i + kh, j:j + kw] * kernel).sum()
    return out


def _keras_conv(x: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """The same through a Keras Conv2D (or Conv1D for 1-row inputs) holding ``kernel``."""
    if x.shape[0] == 1:  # 1-D
        layer = keras.layers.Conv1D(1, kernel.shape[1], padding="valid", use_bias=False)
        out = layer(x.reshape(1, -1, 1).astype("float32"))  # build
        layer.set_weights([kernel.reshape(-1, 1, 1)])
        return np.asarray(layer(x.reshape(1, -1, 1).astype("float32"))).reshape(1, -1)
    layer = keras.layers.Conv2D(1, kernel.shape, padding="valid", use_bias=False)
    inputs = x[None, :, :, None].astype("float32")
    layer(inputs)
    layer.set_weights([kernel[:, :, None, None]])
    out = layer(inputs)
    return np.asarray(out)[0, :, :, 0]


def _conv_cases(seed: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(seed)
    return {
        "fig 9.1 (3×4, kernel 2×2)": (np.arange(1, 13, dtype=float).reshape(3, 4),
                                      np.array([[1.0, 2.0], [3.0, 4.0]])),
        "random 7×9, kernel 3×3": (rng.normal(size=(7, 9)), rng.normal(size=(3, 3))),
        "1-D: 10 values, kernel 3": (rng.normal(size=(1, 10)), rng.normal(size=(1, 3))),
    }


def _conv_verdict(f: pd.DataFrame) -> Finding:
    worst, flipped = 0.0, np.inf
    for _, part in f.groupby("case", sort=False):
        values = {s: part[part["source"] == s].sort_values(["i", "j"])["value"].to_numpy()
                  for s in ("numpy", "keras", "numpy flipped kernel")}
        worst = max(worst, float(np.abs(values["numpy"] - values["keras"]).max()))
        flipped = min(flipped, float(np.abs(values["numpy flipped kernel"]
                                            - values["keras"]).max()))
    cases = f["case"].nunique()
    return finding(f"{cases} cases: hand-computed valid cross-correlation vs Keras Conv2D/Conv1D "
                   f"differ by at most {worst:.1e}; with the kernel flipped (textbook "
                   f"convolution) they differ by {flipped:.2f} or more",
                   worst < 1e-5 and flipped > 1e-3, flipped / max(worst, 1e-12),
                   "the flipped kernel's difference is {}× the cross-correlation's", spec=".0e",
                   null=1)


def _conv_plot(f: pd.DataFrame, path) -> None:
    first = f[f["case"] == f["case"].iloc[0]]
    fig, axes = figure(4, size=(3, 3))
    for ax, source in zip(axes[0], ("input", "kernel", "numpy", "keras"), strict=True):
        part = first[first["source"] == source]
        grid = np.full((part["i"].max() + 1, part["j"].max() + 1), np.nan)
        grid[part["i"], part["j"]] = part["value"]
        ax.imshow(grid, cmap="Blues")
        for (i, j), v in np.ndenumerate(grid):
            ax.text(j, i, f"{v:g}", ha="center", va="center")
        ax.set(title=source if source in ("input", "kernel") else f"output ({source})",
               xticks=[], yticks=[])
    save(fig, path)


@lab("convolution", order=13, topic=(14, 18),
     claim="A Keras convolution layer computes the valid cross-correlation of fig. 9.1 (no "
           "kernel flip), in 2-D and 1-D.", seconds=1, verdict=_conv_verdict, plot=_conv_plot)
def convolution(quick: bool, seed: int) -> pd.DataFrame:
    rows = []
    for case, (x, kernel) in _conv_cases(seed).items():
        outputs = {"input": x, "kernel": kernel, "numpy": cross_correlate(x, kernel),
                   "keras": _keras_conv(x, kernel),
                   "numpy flipped kernel": cross_correlate(x, kernel[::-1, ::-1])}
        for source, array in outputs.items():
            for (i, j), value in np.ndenumerate(array):
                rows.append({"case": case, "source": source, "i": i, "j": j,
                             "value": float(value)})
    return pd.DataFrame(rows)


# --- padding, stride, pooling -------------------------------------------------------------

SIZE, KERNEL, LAYERS = 28, 3, 3


def _expected_size(n: int, padding: str, stride: int) -> int:
    """(n + 2p − k) / s + 1, rounded down; "same" pads p so that the size is ⌈n / s⌉."""
    return -(-n // stride) if padding == "same" else (n - KERNEL) // stride + 1


def _padding_verdict(f: pd.DataFrame) -> Finding:
    shapes = f[f["kind"] == "size"]
    mismatch = int((shapes["keras"] != shapes["formula"]).sum())
    final = shapes[shapes["layer"] == shapes["layer"].max()]
    sizes = ", ".join(f"{r.setting}: {r.keras:.0f}" for r in final.itertuples())
    shift = f[f["kind"] == "shift"].set_index("setting")["keras"]
    return finding(f"after {LAYERS} 3×3 layers a {SIZE}×{SIZE} input is {sizes} (formula "
                   f"mismatches: {mismatch}); shifting digits by one pixel leaves "
                   f"{shift['detector']:.0%} of the detector outputs and "
                   f"{shift['max pool']:.0%} of the max-pooled outputs unchanged",
                   mismatch == 0 and shift["max pool"] > shift["detector"],
                   shift["max pool"] - shift["detector"],
                   "max pooling keeps {} more of the outputs unchanged under a shift",
                   spec=".0%")


def _padding_plot(f: pd.DataFrame, path) -> None:
    fig, axes = figure(2)
    shapes = f[f["kind"] == "size"]
    for setting, part in shapes.groupby("setting", sort=False):
        axes[0, 0].plot(part["layer"], part["keras"], "o-", label=setting)
    axes[0, 0].set(xlabel="layer", ylabel="output height = width",
                   title=f"{SIZE}×{SIZE} input through 3×3 convolutions")
    axes[0, 0].legend(fontsize=8)
    axes[0, 0].grid(alpha=0.3)
    shift = f[f["kind"] == "shift"]
    axes[0, 1].bar(shift["setting"], shift["keras"], color=["C0", "C1"])
    axes[0, 1].set(ylim=(0, 1), title="outputs unchanged by a 1-pixel shift")
    save(fig, path)


@lab("padding-stride", order=14, topic=(20, 21),
     claim="Without zero padding each layer shrinks the image by k − 1, with 'same' padding "
           "it keeps its size, stride 2 halves it (fig. 9.13); max pooling makes the output "
           "nearly invariant to small shifts.", seconds=1,
     verdict=_padding_verdict, plot=_padding_plot)
def padding_stride(quick: bool, seed: int) -> pd.DataFrame:
    rows = []
    for padding, stride in (("valid", 1), ("same", 1), ("valid", 2), ("same", 2)):
        x = keras.Input((SIZE, SIZE, 1))
        expected = SIZE
        for layer in range(1, LAYERS + 1):
            x = keras.layers.Conv2D(1, KERNEL, strides=stride, padding=padding)(x)
            expected = _expected_size(expected, padding, stride)
            rows.append({"kind": "size", "setting": f"{padding}, stride {stride}",
                         "layer": layer, "keras": x.shape[1], "formula": expected})
    d = digits()
    images = d["x_train"][:200 if quick else 1000]
    shifted = np.roll(images, 1, axis=2)
    shifted[:, :, 0] = 0
    with seeding.seeded(seed):
        detector = keras.Sequential([keras.Input((8, 8, 1)),
                                     keras.layers.Conv2D(8, 3, padding="same", activation="relu")])
        pooled = keras.Sequential([detector, keras.layers.MaxPooling2D(3, strides=1,
                                                                       padding="same")])
    for name, model in (("detector", detector), ("max pool", pooled)):
        a, b = np.asarray(model(images)), np.asarray(model(shifted))
        rows.append({"kind": "shift", "setting": name, "layer": np.nan,
                     "keras": float(np.isclose(a, b, atol=1e-6).mean()), "formula": np.nan})
    return pd.DataFrame(rows)


# --- parameter sharing --------------------------------------------------------------------

TOLERANCE = 0.01  # "at least as well": the cnn may trail the dense net by this much accuracy
SHARING_CANVAS = 12  # digits anywhere on a 12×12 canvas: the same strokes at many positions

def _sharing_verdict(f: pd.DataFrame) -> Finding:
    r = f.set_index("model")
    cnn, mlp = r.loc["cnn"], r.loc["mlp"]
    fewer = mlp["parameters"] / cnn["parameters"]
    return finding(f"digits anywhere on a {SHARING_CANVAS}×{SHARING_CANVAS} canvas: cnn: "
                   f"{cnn['parameters']:,.0f} parameters, test accuracy "
                   f"{cnn['test_accuracy']:.3f}; dense mlp: {mlp['parameters']:,.0f} parameters, "
                   f"{mlp['test_accuracy']:.3f}",
                   fewer > 1 and cnn["test_accuracy"] >= mlp["test_accuracy"] - TOLERANCE,
                   cnn["test_accuracy"] - mlp["test_accuracy"],
                   f"with {fewer:.1f}× fewer parameters the cnn's test accuracy differs by {{}}",
                   spec="+.3f", null=-TOLERANCE,
                   noise=accuracy_noise(mlp["test_accuracy"], int(mlp["test_examples"])))


def _sharing_plot(f: pd.DataFrame, path) -> None:
    fig, axes = figure(2)
    axes[0, 0].bar(f["model"], f["parameters"], color=["C0", "C1"])
    axes[0, 0].set(title="parameters", yscale="log")
    axes[0, 1].bar(f["model"], f["test_accuracy"], color=["C0", "C1"])
    axes[0, 1].set(title="test accuracy", ylim=(max(0, f["test_accuracy"].min() - 0.1), 1))
    save(fig, path)


@lab("parameter-sharing", order=15, topic=15, detail="parameter sharing",
     claim="A CNN shares each kernel across positions, so it needs far fewer parameters than a "
           "dense net and classifies images at least as well.",
     seconds=24, verdict=_sharing_verdict, plot=_sharing_plot)
def parameter_sharing(quick: bool, seed: int) -> pd.DataFrame:
    d = digits()
    rng = np.random.default_rng(seed)
    for split in ("train", "val", "test"):
        d[f"x_{split}"], d[f"y_{split}"] = placed(d[f"x_{split}"], d[f"y_{split}"], rng,
                                                  SHARING_CANVAS)
    shape = (SHARING_CANVAS, SHARING_CANVAS, 1)
    rows = []
    for name, model in (("cnn", lambda: build("cnn", filters=[16, 32], input_shape=shape)),
                        ("mlp", lambda: build("mlp", units=[256, 128], input_shape=shape))):
        with seeding.seeded(seed):
            net = compiled(model(), "adam")
        fit(net, d, epochs=12 if quick else 30)
        rows.append({"model": name, "parameters": net.count_params(),
                     "test_accuracy": accuracy(net, d["x_test"], d["y_test"]),
                     "test_examples": len(d["y_test"])})
    return pd.DataFrame(rows)


# --- transfer learning --------------------------------------------------------------------
# Digits placed anywhere on a larger noisy canvas: a net must find the strokes wherever they are.
# From 3 examples per class it cannot learn that from scratch; a conv base pretrained on the
# other digits at many places has, and its stroke detectors carry over to the new classes.

SOURCE, TARGET, PER_CLASS = [0, 1, 2, 3, 4], [5, 6, 7, 8, 9], 3
CANVAS, COPIES, DRAWS = 20, 4, 3  # canvas side; placements per source image; target draws
NOISE = 0.3  # the canvas: uniform noise in [0, NOISE]
MODELS = ("frozen base", "fine-tuned", "scratch")


def _transfer_net(classes: int):
    """Three 3×3 conv layers (``conv1``–``conv3``), global max pooling, a softmax head: the
    pooling makes the features the same wherever the digit is."""
    inputs = keras.Input((CANVAS, CANVAS, 1))
    x = inputs
    for k, filters in enumerate((32, 64, 64), start=1):
        x = keras.layers.Conv2D(filters, 3, padding="same", activation="relu", name=f"conv{k}")(x)
        if k < 3:
            x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.Dropout(0.25)(keras.layers.GlobalMaxPooling2D()(x))
    return keras.Model(inputs, keras.layers.Dense(classes, activation="softmax",
                                                  name="predictions")(x))


def _transfer_scores(f: pd.DataFrame) -> pd.DataFrame:
    """Test accuracy per target draw (rows) and model (columns)."""
    return f.groupby(["draw", "model"], sort=False)["test_accuracy"].last().unstack()


def _transfer_verdict(f: pd.DataFrame) -> Finding:
    scores = _transfer_scores(f)
    mean = scores.mean()
    pretrained = max(MODELS[:2], key=lambda name: mean[name])
    gain = scores[pretrained] - scores["scratch"]
    tested = int(f["test_examples"].iloc[0])
    noise = max(float(gain.std() / np.sqrt(len(gain))) if len(gain) > 1 else float("inf"),
                accuracy_noise(scores.mean().mean(), tested) / np.sqrt(len(gain)))
    shown = ", ".join(f"{name} {mean[name]:.3f} ({scores[name].min():.3f}–"
                      f"{scores[name].max():.3f})" for name in MODELS)
    return finding(f"{PER_CLASS} training images per new class (digits 5–9 anywhere on a "
                   f"{CANVAS}×{CANVAS} canvas), {f['epoch'].max():.0f} epochs, {len(gain)} "
                   f"draws of the training images: mean test accuracy {shown}; the "
                   f"{pretrained} beats scratch in {int((gain > 0).sum())} of {len(gain)} draws",
                   (gain > 0).all(), gain.mean(),
                   f"the {pretrained} adds {{}} test accuracy over training from scratch",
                   spec=".3f", noise=noise)


def _transfer_plot(f: pd.DataFrame, path) -> None:
    fig, axes = figure(3)
    per_epoch = f.groupby(["model", "epoch"], sort=False)[["loss", "val_accuracy"]].mean()
    for column, ax, title in (("loss", axes[0, 0], "training loss (mean over draws)"),
                              ("val_accuracy", axes[0, 1], "validation accuracy (mean)")):
        curves(ax, per_epoch.reset_index(), "model", column, title=title,
               log=column == "loss")
    scores = _transfer_scores(f)
    ax = axes[0, 2]
    colour = colours(per_epoch.reset_index()["model"])  # the curves' colours
    ax.bar(scores.columns, scores.mean(), color=[colour[m] for m in scores.columns], alpha=0.6)
    for draw, row in scores.iterrows():
        ax.plot(scores.columns, row.to_numpy(), "o", color="k", markersize=4,
                label="one draw" if draw == scores.index[0] else None)
    ax.set(title="test accuracy per draw", ylim=(0, 1))
    ax.legend(fontsize=8)
    save(fig, path)


@lab("transfer", order=16, topic=12, detail="transfer learning",
     claim="Features learnt on some classes transfer: with a small training set for new "
           "classes, a conv base pretrained on the others beats training from scratch.",
     seconds=106, verdict=_transfer_verdict, plot=_transfer_plot)
def transfer(quick: bool, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    source = digits(classes=SOURCE)
    source["x_train"], source["y_train"] = placed(source["x_train"], source["y_train"], rng,
                                                  CANVAS, copies=2 if quick else COPIES,
                                                  noise=NOISE)
    source["x_val"], source["y_val"] = placed(source["x_val"], source["y_val"], rng, CANVAS,
                                              noise=NOISE)
    with seeding.seeded(seed):
        pretrained = compiled(_transfer_net(len(SOURCE)), "adam")
    fit(pretrained, source, epochs=3 if quick else 10, seed=seed)
    frames = []
    for draw in range(2 if quick else DRAWS):
        target = digits(n_train=PER_CLASS * len(TARGET), seed=seed * 100 + draw, classes=TARGET)
        for split in ("train", "val", "test"):
            target[f"x_{split}"], target[f"y_{split}"] = placed(
                target[f"x_{split}"], target[f"y_{split}"], rng, CANVAS, noise=NOISE)
        for name in MODELS:
            with seeding.seeded(seed):
                model = _transfer_net(len(TARGET))
            if name != "scratch":
                for layer in model.layers:
                    if layer.name.startswith("conv"):
                        layer.set_weights(pretrained.get_layer(layer.name).get_weights())
                        layer.trainable = name == "fine-tuned"
            compiled(model, "adam", 3e-3)
            frame = fit(model, target, epochs=15 if quick else 60, batch_size=8, seed=seed)
            frame["test_accuracy"] = accuracy(model, target["x_test"], target["y_test"])
            frames.append(frame.assign(model=name, draw=draw, test_examples=len(target["y_test"])))
    return pd.concat(frames)[["model", "draw", "epoch", "loss", "val_loss", "val_accuracy",
                              "test_accuracy", "test_examples"]]
