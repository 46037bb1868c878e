"""Datasets from a folder of images: ``--dataset path/to/folder``.

Two layouts, as Keras's ``image_dataset_from_directory`` and R's ``flow_images_from_directory``
read them:

- class subfolders (``cats/``, ``dogs/``): split into train, validation (``--validation-split``)
  and a fixed 20 % test part, stratified;
- R's layout: ``train/``, ``validation/`` (or ``val/``) and ``test/``, each holding the class
  subfolders; the given splits are used as they are (no ``validation/``: carved from train).

Class names are the folder names in sorted order; two classes make a ``binary`` task (as the R
lab's cats vs dogs), more a ``classification``. Images are decoded with TensorFlow's own decoder
(``tf.io.decode_image``: JPEG, PNG, BMP, GIF, the formats Keras's loader reads) and resized as
Keras does (``tf.image.resize``), then kept as uint8; :func:`decode` is that one step, for
training and for predictions. Folder options (``--data-option`` or their own flags):

- ``image_size``: ``"150x150"`` (height x width); default: the images' own size when they all
  agree;
- ``color_mode``: ``rgb`` or ``grayscale``; default: grayscale when every image is grey;
- ``interpolation``: how images are resized (``bilinear``, as Keras);
- ``skip_bad``: skip and count images that cannot be decoded, instead of stopping;
- ``cache``: folder for the decoded images of a folder too large for memory (default
  ``$XDG_CACHE_HOME/labkit``).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from labkit._lazy import lazy_import
from labkit.data.base import Data, DatasetSpec, split, train_val_test
from labkit.errors import LabkitError

np = lazy_import("numpy")  # imported on first use: listing commands never pay for it

COLOR_MODES = ("rgb", "grayscale")
EXTENSIONS = (".bmp", ".gif", ".jpeg", ".jpg", ".png")  # what Keras's directory loader reads
SPLIT_FOLDERS = {"train": ("train",), "val": ("validation", "val"), "test": ("test",)}
INTERPOLATIONS = ("bilinear", "nearest", "bicubic", "area", "lanczos3", "lanczos5", "gaussian",
                  "mitchellcubic")
OPTIONS = ("image_size", "color_mode", "interpolation", "skip_bad", "cache")
GREY_MODES = ("1", "L", "I", "I;16", "F")  # Pillow's single-channel modes
# Decoded folders up to this size are numpy arrays; larger ones stream from a disk cache.
IN_MEMORY_LIMIT = 4 * 1024**3


@dataclass(frozen=True)
class Settings:
    """A folder's options, checked."""

    image_size: tuple[int, int] | None = None
    color_mode: str | None = None
    interpolation: str = "bilinear"
    skip_bad: bool = False
    cache: str | None = None

    @property
    def channels(self) -> int:
        return 1 if self.color_mode == "grayscale" else 3


@dataclass(frozen=True)
class Folder:
    """What a scan of the folder found, before any image is decoded."""

    root: Path
    class_names: tuple[str, ...]
    splits: dict[str, tuple[list[Path], np.ndarray]]  # "all", or "train"/"val"/"test"
    settings: Settings  # with the image size and colour mode filled in
    skipped: int  # files that are not images (by extension)
    unreadable: tuple[Path, ...]  # image files whose header could not be read (skip_bad)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return (*self.settings.image_size, self.settings.channels)


def settings(options: dict) -> Settings:
    """The folder options of ``options`` checked: a LabkitError names a bad one."""
    size = options.get("image_size")
    if size is not None:
        size = parse_image_size(size)
    mode = options.get("color_mode")
    if mode not in (None, *COLOR_MODES):
        raise LabkitError(f"--color-mode must be rgb or grayscale. Received: {mode!r}")
    interpolation = options.get("interpolation", "bilinear")
    if interpolation not in INTERPOLATIONS:
        raise LabkitError(f"interpolation must be one of {', '.join(INTERPOLATIONS)}. "
                          f"Received: {interpolation!r}")
    skip_bad = options.get("skip_bad", False)
    if not isinstance(skip_bad, bool):
        raise LabkitError(f"skip_bad is true or false. Received: {skip_bad!r}")
    cache = options.get("cache")
    return Settings(size, mode, interpolation, skip_bad, None if cache is None else str(cache))


def parse_image_size(value) -> tuple[int, int]:
    """``"150x150"``, ``150`` or ``[150, 150]`` → ``(height, width)``."""
    if isinstance(value, str):
        parts = value.lower().replace(",", "x").split("x")
    elif isinstance(value, (list, tuple)):
        parts = list(value)
    else:
        parts = [value, value]
    try:
        height, width = (int(p) for p in parts) if len(parts) == 2 else (int(parts[0]),) * 2
    except (TypeError, ValueError):
        height = width = 0
    if height < 1 or width < 1 or height > 4096 or width > 4096:
        raise LabkitError(f"--image-size is HEIGHTxWIDTH in pixels (1 to 4096), e.g. 150x150. "
                          f"Received: {value!r}")
    return height, width


def scan(root: str | Path, options: dict) -> Folder:
    """Find the classes, splits and image files of ``root`` and fill in the image size and
    colour mode from the images' headers (Pillow reads them without decoding)."""
    root = Path(root)
    chosen = settings(options)
    if not os.access(root, os.R_OK | os.X_OK):
        raise LabkitError(f"Image folder {str(root)!r} is not readable.")
    layout = {key: next((root / n for n in names if (root / n).is_dir()), None)
              for key, names in SPLIT_FOLDERS.items()}
    split_roots = {k: v for k, v in layout.items() if v is not None} if layout["train"] else \
        {"all": root}
    found = {key: _class_files(folder) for key, folder in split_roots.items()}
    class_names = tuple(sorted(set().union(*(classes for classes, _ in found.values()))))
    main = "train" if "train" in found else "all"
    where = split_roots[main]
    if not found[main][0]:
        raise LabkitError(f"Image folder {str(where)!r} has no class subfolders: put each "
                          f"class's images in a folder named after it ({where}/cats/, "
                          f"{where}/dogs/).")
    if len(found[main][0]) < 2:
        raise LabkitError(f"Image folder {str(where)!r} has one class "
                          f"({next(iter(found[main][0]))}); a classifier needs at least two class "
                          "subfolders.")
    skipped = sum(skip for _, (_, skip) in found.items())
    headers, unreadable = {}, []
    for classes, _ in found.values():
        for files in classes.values():
            for path in files:
                info = _header(path)
                if info is None:
                    unreadable.append(path)
                else:
                    headers[path] = info
    if unreadable and not chosen.skip_bad:
        raise undecodable(unreadable)
    splits = {}
    for key, (classes, _) in found.items():
        paths = [(path, class_names.index(name)) for name, files in sorted(classes.items())
                 for path in files if path in headers]
        for name, files in classes.items():
            if not any(path in headers for path in files):
                raise LabkitError(f"Class folder {str(split_roots[key] / name)!r} holds no "
                                  f"image that can be decoded ({', '.join(EXTENSIONS)}).")
        splits[key] = ([p for p, _ in paths], np.array([c for _, c in paths], dtype="int64"))
    size, mode = chosen.image_size, chosen.color_mode
    if size is None:
        sizes = {headers[p][0] for p in headers}
        if len(sizes) > 1:
            (w1, h1), (w2, h2) = sorted(sizes)[:2]
            raise LabkitError(f"The images of {str(root)!r} differ in size ({h1}x{w1}, "
                              f"{h2}x{w2}, …); pass --image-size HEIGHTxWIDTH, e.g. "
                              "--image-size 150x150.")
        width, height = sizes.pop()
        size = (height, width)
    if mode is None:
        mode = "grayscale" if all(h[1] in GREY_MODES for h in headers.values()) else "rgb"
    filled = Settings(size, mode, chosen.interpolation, chosen.skip_bad, chosen.cache)
    return Folder(root, class_names, splits, filled, skipped, tuple(unreadable))


def spec_of(name: str, folder: Folder) -> DatasetSpec:
    task = "binary" if len(folder.class_names) == 2 else "classification"
    return DatasetSpec(name, folder.input_shape, len(folder.class_names), task=task,
                       class_names=folder.class_names, scale=255.0)


def undecodable(paths: list) -> LabkitError:
    """The error for image files that cannot be decoded (the first named, the rest counted)."""
    more = f" ({len(paths) - 1} more)" if len(paths) > 1 else ""
    return LabkitError(f"{paths[0]} cannot be decoded as an image{more}. Remove it, or pass "
                       "--data-option skip_bad=true to skip bad files.")


def spec(name: str, options: dict) -> DatasetSpec:
    return spec_of(name, scan(name, options))


def load(name: str, validation_split: float, **options) -> Data:
    """The splits of the image folder ``name``: uint8 ``(n, h, w, c)`` arrays, or for a folder
    whose decoded images exceed :data:`IN_MEMORY_LIMIT`, ``tf.data`` streams cached on disk."""
    folder = scan(name, options)
    spec = spec_of(name, folder)
    if "all" in folder.splits:
        paths, labels = folder.splits["all"]
        parts = train_val_test(np.array(paths, dtype=object), labels, validation_split)
    else:
        paths, labels = folder.splits["train"]
        given_val = folder.splits.get("val")
        if given_val is None:
            train, val = split(np.array(paths, dtype=object), labels, validation_split)
        else:
            train, val = (np.array(paths, dtype=object), labels), _as_arrays(given_val)
        test = folder.splits.get("test")
        parts = (train, val, _as_arrays(test) if test is not None else None)
    total = sum(len(part[1]) for part in parts if part is not None)
    stream = total * int(np.prod(folder.input_shape)) > IN_MEMORY_LIMIT
    decoded, bad = [], list(folder.unreadable)
    for part in parts:
        if part is None:
            decoded.append(None)
            continue
        files, y = part
        if stream:
            decoded.append(_cached_stream(list(files), y, folder.settings))
            continue
        x, failed = decode(list(files), folder.settings)
        if failed and not folder.settings.skip_bad:
            raise undecodable(failed)
        bad += failed
        keep = np.isin(np.array(files, dtype=object), np.array(failed, dtype=object), invert=True)
        decoded.append((x, y[keep]))
    notes = []
    if folder.skipped:
        notes.append(f"{folder.skipped} file(s) that are not {'/'.join(EXTENSIONS)} images "
                     "skipped")
    if bad:
        notes.append(f"{len(bad)} image(s) that could not be decoded skipped (skip_bad), e.g. "
                     f"{bad[0]}")
    return Data(spec, *decoded, cached=stream, notes=tuple(notes))


def decode(paths: list, settings: Settings) -> tuple[np.ndarray, list]:
    """Decode and resize ``paths`` as training does: uint8 ``(n, h, w, c)``, and the paths
    that could not be decoded (left out of the array). Parallel, in order."""
    import tensorflow as tf

    ds = tf.data.Dataset.from_tensor_slices((np.arange(len(paths)), [str(p) for p in paths]))
    ds = ds.map(lambda i, path: (i, _decode_file(path, settings)),
                num_parallel_calls=tf.data.AUTOTUNE, deterministic=True).ignore_errors()
    indices, images = [], []
    for i, image in ds.batch(256).as_numpy_iterator():
        indices.extend(i.tolist())
        images.append(image)
    failed = sorted(set(range(len(paths))) - set(indices))
    shape = (0, *settings.image_size, settings.channels)
    x = np.concatenate(images) if images else np.zeros(shape, dtype="uint8")
    return x, [paths[i] for i in failed]


def _decode_file(path, settings: Settings):
    import tensorflow as tf

    image = tf.io.decode_image(tf.io.read_file(path), channels=settings.channels,
                               expand_animations=False)
    return resize(image, settings.image_size, settings.interpolation)


def resize(image, size: tuple[int, int], interpolation: str = "bilinear"):
    """``tf.image.resize`` as Keras's loader calls it, rounded back to uint8."""
    import tensorflow as tf

    image = tf.image.resize(image, size, method=interpolation)
    return tf.cast(tf.clip_by_value(tf.round(image), 0, 255), tf.uint8)


def _cached_stream(paths: list, labels: np.ndarray, settings: Settings):
    """A ``tf.data`` stream of ``(uint8 image, label)`` decoded once into a disk cache named by
    the files, their sizes and times and the settings (so a changed folder is decoded again).
    The first pass fills the cache and finds files that cannot be decoded."""
    import tensorflow as tf

    key = hashlib.sha256(repr((settings.image_size, settings.channels, settings.interpolation,
                               [(str(p), os.stat(p).st_size, os.stat(p).st_mtime_ns)
                                for p in paths])).encode()).hexdigest()[:20]
    base = Path(settings.cache or os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    folder = (base / "labkit" if not settings.cache else base) / f"images-{key}"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise LabkitError(f"Cannot create the image cache {str(folder)!r}: {err.strerror}. "
                          "Pass --data-option cache=DIR.") from None
    ds = tf.data.Dataset.from_tensor_slices(([str(p) for p in paths], labels))
    ds = ds.map(lambda path, y: (path, _decode_file(path, settings), y),
                num_parallel_calls=tf.data.AUTOTUNE, deterministic=True).ignore_errors()
    done = folder / "complete"
    if not done.exists():  # a pass cut short leaves a partial cache (and TF's lock file)
        for stale in folder.iterdir():
            stale.unlink()
    ds = ds.cache(str(folder / "data"))
    if not done.exists():
        decoded = {path.decode() for path, _, _ in ds.map(lambda p, x, y: (p, 0, 0))
                   .as_numpy_iterator()}
        failed = [p for p in paths if str(p) not in decoded]
        if failed and not settings.skip_bad:
            raise undecodable(failed)
        done.write_text(f"{len(decoded)}\n")
    return ds.map(lambda path, x, y: (x, y))


def _class_files(folder: Path) -> tuple[dict[str, list[Path]], int]:
    """``{class name: sorted image files}`` under ``folder``'s subfolders (searched
    recursively, as Keras does) and the number of other files skipped."""
    classes, skipped = {}, 0
    for sub in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
        files = []
        for path in sorted(sub.rglob("*")):
            if path.name.startswith(".") or not path.is_file():
                continue
            if path.suffix.lower() in EXTENSIONS:
                files.append(path)
            else:
                skipped += 1
        classes[sub.name] = files
    return classes, skipped


def channel_mismatch(paths: list, channels: int) -> int:
    """How many of ``paths`` are grey when ``channels`` is 3, or colour when it is 1 (decoding
    converts them, as training did)."""
    count = 0
    for path in paths:
        info = _header(Path(path))
        if info is not None and (info[1] in GREY_MODES) != (channels == 1):
            count += 1
    return count


def _header(path: Path) -> tuple[tuple[int, int], str] | None:
    """``((width, height), Pillow mode)`` from the file's header, or None if it is no image.
    An image that declares more pixels than Pillow's decompression-bomb limit
    (``PIL.Image.MAX_IMAGE_PIXELS``, ~89 million) is a LabkitError naming the file and the
    limit, before anything is decoded (also with ``skip_bad``: it is not a broken file but a
    hostile or absurd one)."""
    import warnings

    from PIL import Image, UnidentifiedImageError

    limit = Image.MAX_IMAGE_PIXELS
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                size, mode = image.size, image.mode
    except Image.DecompressionBombError:
        size, mode = None, None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        return None
    if limit and (size is None or size[0] * size[1] > limit):
        declared = f" ({size[1]}x{size[0]})" if size else ""
        raise LabkitError(f"{path} declares more pixels{declared} than Pillow's "
                          f"decompression-bomb limit of {limit:,} (PIL.Image.MAX_IMAGE_PIXELS); "
                          "refused before decoding. Remove it, or shrink it first.")
    return size, mode


def _as_arrays(part):
    paths, labels = part
    return np.array(paths, dtype=object), labels
