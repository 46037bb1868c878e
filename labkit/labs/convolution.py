"""Labs on convolutional networks (lecture topics 12, 14–15, 18, 20–21): the convolution itself,
padding and stride, parameter sharing, and transfer learning."""

from __future__ import annotations

from labkit._lazy import lazy_import
from labkit.labs._kit import (
    accuracy,
    build,
    compiled,
    digits,
    figure,
    fit,
    holds,
    keras,
    lab,
    learning_curves,
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


def _conv_verdict(f: pd.DataFrame) -> str:
    worst, flipped = 0.0, np.inf
    for _, part in f.groupby("case", sort=False):
        values = {s: part[part["source"] == s].sort_values(["i", "j"])["value"].to_numpy()
                  for s in ("numpy", "keras", "numpy flipped kernel")}
        worst = max(worst, float(np.abs(values["numpy"] - values["keras"]).max()))
        flipped = min(flipped, float(np.abs(values["numpy flipped kernel"]
                                            - values["keras"]).max()))
    cases = f["case"].nunique()
    return (f"{cases} cases: hand-computed valid cross-correlation vs Keras Conv2D/Conv1D differ "
            f"by at most {worst:.1e}; with the kernel flipped (textbook convolution) they differ "
            f"by {flipped:.2f} or more — " + holds(worst < 1e-5 and flipped > 1e-3))


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
           "kernel flip), in 2-D and 1-D.", seconds=5, verdict=_conv_verdict, plot=_conv_plot)
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


def _padding_verdict(f: pd.DataFrame) -> str:
    shapes = f[f["kind"] == "size"]
    mismatch = int((shapes["keras"] != shapes["formula"]).sum())
    final = shapes[shapes["layer"] == shapes["layer"].max()]
    sizes = ", ".join(f"{r.setting}: {r.keras:.0f}" for r in final.itertuples())
    shift = f[f["kind"] == "shift"].set_index("setting")["keras"]
    return (f"after {LAYERS} 3×3 layers a {SIZE}×{SIZE} input is {sizes} (formula "
            f"mismatches: {mismatch}); shifting digits by one pixel leaves "
            f"{shift['detector']:.0%} of the detector outputs and {shift['max pool']:.0%} of "
            f"the max-pooled outputs unchanged — "
            + holds(mismatch == 0 and shift["max pool"] > shift["detector"]))


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
           "nearly invariant to small shifts.", seconds=5,
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
    keras.utils.set_random_seed(seed)
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

def _sharing_verdict(f: pd.DataFrame) -> str:
    r = f.set_index("model")
    cnn, mlp = r.loc["cnn"], r.loc["mlp"]
    return (f"cnn: {cnn['parameters']:,.0f} parameters, test accuracy {cnn['test_accuracy']:.3f}; "
            f"dense mlp: {mlp['parameters']:,.0f} parameters, {mlp['test_accuracy']:.3f} — "
            + holds(cnn["parameters"] < mlp["parameters"]
                    and cnn["test_accuracy"] >= mlp["test_accuracy"] - 0.01))


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
     seconds=25, verdict=_sharing_verdict, plot=_sharing_plot)
def parameter_sharing(quick: bool, seed: int) -> pd.DataFrame:
    d = digits()
    rows = []
    for name, model in (("cnn", lambda: build("cnn", filters=[16, 32])),
                        ("mlp", lambda: build("mlp", units=[256, 128]))):
        keras.utils.set_random_seed(seed)
        net = compiled(model(), "adam")
        fit(net, d, epochs=4 if quick else 30)
        rows.append({"model": name, "parameters": net.count_params(),
                     "test_accuracy": accuracy(net, d["x_test"], d["y_test"])})
    return pd.DataFrame(rows)


# --- transfer learning --------------------------------------------------------------------

SOURCE, TARGET, PER_CLASS = [0, 1, 2, 3, 4], [5, 6, 7, 8, 9], 3
NET = {"filters": [32, 64], "dropout": 0.25}
MODELS = ("frozen base", "fine-tuned", "scratch")


def _transfer_verdict(f: pd.DataFrame) -> str:
    last = f.groupby("model", sort=False).last()["test_accuracy"]
    best = max(last["frozen base"], last["fine-tuned"])
    return (f"{PER_CLASS} training images per new class (digits 5–9), {f['epoch'].max():.0f} "
            f"epochs: test accuracy {last['frozen base']:.3f} with the conv base pretrained on "
            f"digits 0–4 frozen, {last['fine-tuned']:.3f} with it fine-tuned, "
            f"{last['scratch']:.3f} from scratch — " + holds(best > last["scratch"]))


@lab("transfer", order=16, topic=12, detail="transfer learning",
     claim="Features learnt on some classes transfer: with a small training set for new "
           "classes, a conv base pretrained on the others beats training from scratch.",
     seconds=60, verdict=_transfer_verdict, plot=learning_curves(
         "model", ("loss", "training loss", True),
         ("val_accuracy", "validation accuracy (digits 5–9)", False)))
def transfer(quick: bool, seed: int) -> pd.DataFrame:
    source = digits(classes=SOURCE)
    target = digits(n_train=PER_CLASS * len(TARGET), seed=seed, classes=TARGET)
    keras.utils.set_random_seed(seed)
    pretrained = compiled(build("cnn", num_classes=5, **NET), "adam")
    fit(pretrained, source, epochs=3 if quick else 15)
    frames = []
    for name in MODELS:
        keras.utils.set_random_seed(seed)
        model = build("cnn", num_classes=5, **NET)
        if name != "scratch":
            for layer, trained in zip(model.layers, pretrained.layers, strict=True):
                if isinstance(layer, keras.layers.Conv2D):
                    layer.set_weights(trained.get_weights())
                    layer.trainable = name == "fine-tuned"
        compiled(model, "adam", 3e-3)
        frame = fit(model, target, epochs=12 if quick else 60, batch_size=8)
        frame["test_accuracy"] = accuracy(model, target["x_test"], target["y_test"])
        frames.append(frame.assign(model=name))
    return pd.concat(frames)[["model", "epoch", "loss", "val_loss", "val_accuracy",
                              "test_accuracy"]]
