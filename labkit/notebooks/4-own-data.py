# %% [markdown]
# # 4 · Your own data, end to end
#
# The R lab's cats-vs-dogs workflow on a folder of your own: look at the data, train a convnet,
# evaluate it (confusion matrix, the test images it gets most wrong), predict on new images,
# see what it looks at, and export it for use outside Python.
#
# So that it runs offline in a minute, this notebook first **generates** a small folder in the
# R lab's layout — `train/`, `validation/` and `test/`, each with one folder per class. Point
# `FOLDER` at your own (e.g. the lab's `cats_and_dogs_small`, with `IMAGE_SIZE = "150x150"`)
# and run the same cells.

# %%
from pathlib import Path

import numpy as np
from IPython.display import Image, display
from PIL import Image as PILImage

import labkit

FOLDER = "pets"  # your own: a folder with train/, validation/ and test/ (or one folder per class)
IMAGE_SIZE = None  # e.g. "150x150" when your images differ in size


def make_images(folder: Path, count: int, kind: str, rng) -> None:
    """``count`` 32×32 RGB images of noise with a shape of a random colour somewhere: a disc
    ("cats") or a bar ("dogs"). Only the shape tells the classes apart."""
    folder.mkdir(parents=True, exist_ok=True)
    rows, cols = np.mgrid[:32, :32]
    for k in range(count):
        pixels = rng.integers(0, 110, (32, 32, 3))
        r, c = rng.integers(8, 24, 2)
        if kind == "cats":
            shape = (rows - r) ** 2 + (cols - c) ** 2 < 30
        else:
            shape = (abs(rows - r) < 2) & (abs(cols - c) < 8)
        pixels[shape] = rng.integers(90, 256, 3)
        PILImage.fromarray(pixels.astype("uint8")).save(folder / f"{kind}.{k}.jpg")


rng = np.random.default_rng(0)
if FOLDER == "pets":
    for split, count in {"train": 60, "validation": 20, "test": 20}.items():
        for kind in ("cats", "dogs"):
            make_images(Path(FOLDER) / split / kind, count, kind, rng)
    for kind in ("cats", "dogs"):  # "new" images for predict, no labels
        make_images(Path("new_photos"), 2, kind, rng)
sorted(str(p) for p in Path(FOLDER).glob("*/*"))

# %% [markdown]
# ## Look at the data (`labkit data`)
#
# What labkit reads from the folder: its splits, the classes (named by the folders), the image
# size and channels, and any file it skips.

# %%
from labkit.data.catalog import render_summary, summarize  # noqa: E402

options = {"image_size": IMAGE_SIZE} if IMAGE_SIZE else {}
print(render_summary(summarize(FOLDER, options=options)))

# %% [markdown]
# ## Train
#
# Two classes make the R lab's binary head (one sigmoid unit, binary cross-entropy). Random
# flips augment the training images (the lab's `image_data_generator`).

# %%
run = labkit.train("cnn", dataset=FOLDER, data_options=options, epochs=12, filters=[16, 32],
                   augment="flip")
run.plot()

# %% [markdown]
# ## Evaluate: the confusion matrix and the worst mistakes

# %%
report = labkit.evaluate(run)
print(f"test accuracy {report['test_accuracy']:.3f}")
display(Image(filename=str(run.file("confusion_matrix.png"))))
display(Image(filename=str(run.file("top_losses.png"))))

# %% [markdown]
# ## Predict on new images
#
# Files, folders or globs; each image is decoded and resized as in training. The answer is the
# class with its probability.

# %%
labkit.predict(run, "new_photos")

# %% [markdown]
# ## What it looks at (Grad-CAM)

# %%
for picture in labkit.explain.explain_run(run, ["new_photos"]):
    display(Image(filename=str(picture)))

# %% [markdown]
# ## Export
#
# A TensorFlow SavedModel serves the raw images (resizing and scaling are inside it). labkit
# loads each export in its own runtime and checks it gives the Keras model's answers on the
# test images; `labkit.formats.FORMATS` lists the other formats (LiteRT, ONNX).

# %%
exported = labkit.export.export(run.path, "savedmodel", "exported", force=True)
{key: exported[0][key] for key in ("format", "path", "examples", "max_abs_diff")}

# %% [markdown]
# **Try it:** train the lab's larger convnet (`filters=[32, 64, 128, 128]`, `dense_units=[512]`)
# or add `rotation=0.1` to the augmentation; then run the evaluate cell again and compare.

# %%
run = labkit.train("cnn", dataset=FOLDER, data_options=options, epochs=12,
                   filters=[16, 32], augment="flip,rotation=0.1", echo=None)
print(f"test accuracy {labkit.evaluate(run)['test_accuracy']:.3f}")
