"""Image folders: one folder per class, or `train/`, `val/`, `test/` each with one folder per class.

Scanning reads only each file's header (with pillow), so it is quick and nothing is loaded whole:
it finds the classes (sorted folder names), the files pillow can read, their colour and a default
image size. The pixels are decoded later, inside tf.data, a batch at a time: JPEG, PNG, GIF and
BMP by TensorFlow itself (JPEG and PNG only, for grayscale), every other format pillow reads
(TIFF, WebP, PPM, ...) and JPEGs that need EXIF rotation through pillow in `tf.numpy_function`. Both paths resize the same way
(bilinear with antialiasing, stretched to a square: the aspect ratio is not kept) and round to
8-bit pixels, which is what the Core ML model receives from Vision too.
"""

from __future__ import annotations

import dataclasses
import warnings
from pathlib import Path

import numpy as np

from kerasml.errors import KerasmlError

SPLIT_NAMES = {"train": "train", "val": "val", "valid": "val", "validation": "val", "test": "test"}
# What tf.io.decode_image reads by itself, by output channels (it cannot make GIF or BMP gray).
NATIVE_FORMATS = {1: {"JPEG", "PNG"}, 3: {"JPEG", "PNG", "GIF", "BMP"}}
GRAY_MODES = {"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F"}
MIN_SIZE, MAX_SIZE = 28, 224                     # bounds of the default --image-size
COLOUR_SAMPLE = 200                              # RGB files decoded to tell colour from gray
EXIF_ORIENTATION = 0x0112
# Decoded training images are cached in memory when a split's pixels fit in this many bytes (the
# training split's shuffle buffer holds as much again); larger splits are decoded every epoch.
CACHE_BUDGET = 1 << 30


@dataclasses.dataclass
class ImageFiles:
    """One split: image paths, their class numbers, and which ones TensorFlow decodes itself."""

    paths: list[str]
    labels: np.ndarray                           # int64 (N,)
    native: np.ndarray                           # bool (N,): False → pillow decodes it

    def __len__(self) -> int:
        return len(self.paths)

    def subset(self, indices) -> "ImageFiles":
        indices = np.asarray(indices, dtype=np.int64)
        return ImageFiles([self.paths[i] for i in indices], self.labels[indices], self.native[indices])


@dataclasses.dataclass
class ImageFolders:
    """A scanned folder dataset: everything known about it without decoding the pixels."""

    root: Path
    labels: list[str]
    train: ImageFiles
    val: ImageFiles | None
    test: ImageFiles | None
    channels: int                                # 1 when every image is gray, else 3
    default_size: int                            # median shorter side, within MIN_SIZE..MAX_SIZE
    skipped: int = 0                             # files pillow could not read
    formats: dict[str, int] = dataclasses.field(default_factory=dict)

    def image_shape(self, size: int | None = None) -> tuple[int, int, int]:
        size = size or self.default_size
        return (size, size, self.channels)

    def split_validation(self, fraction: float, seed: int) -> tuple[ImageFiles, ImageFiles]:
        """The `val/` folder when there is one, else a seeded, per-class share of `train/`."""
        if self.val is not None:
            return self.train, self.val
        rng = np.random.default_rng(seed)
        held_out: list[int] = []
        for label in range(len(self.labels)):
            members = np.flatnonzero(self.train.labels == label)
            count = int(round(len(members) * fraction))
            held_out += rng.permutation(members)[:count].tolist()
        if not held_out:      # too few images for the fraction: hold out one anyway
            held_out = [int(rng.integers(len(self.train)))]
        keep = np.setdiff1d(np.arange(len(self.train)), held_out)
        if len(keep) == 0:
            raise KerasmlError(f"{self.root} has only {len(self.train)} training images; need at least 2")
        return self.train.subset(keep), self.train.subset(np.sort(held_out))

    def dataset(self, files: ImageFiles, size: int | None = None, shuffle_seed: int | None = None,
                cache: bool = False):
        """tf.data of (uint8 image (size, size, channels), class number), decoded as it streams;
        with `cache`, decoded once and kept in memory for the following epochs."""
        return image_dataset(files, size or self.default_size, self.channels, shuffle_seed, cache)

    def fits_in_memory(self, files: ImageFiles, size: int | None = None) -> bool:
        """Whether the decoded pixels of `files` fit in CACHE_BUDGET."""
        size = size or self.default_size
        return len(files) * size * size * self.channels <= CACHE_BUDGET

    def arrays(self, files: ImageFiles, size: int | None = None, limit: int | None = None,
               seed: int = 0):
        """Decoded uint8 images (N, size, size, C) and labels, for a few images (reports, checks):
        all of `files`, or a seeded sample of `limit` of them in their original order."""
        if limit is not None and limit < len(files):
            files = files.subset(np.sort(np.random.default_rng(seed).permutation(len(files))[:limit]))
        x = np.stack([image for image, _ in self.dataset(files, size).as_numpy_iterator()])
        return x, files.labels.copy()

    def find_damaged(self) -> tuple[str, str] | None:
        """(path, reason) of the first image that pillow cannot decode fully; slow, for error
        messages only (the scan reads headers, so a truncated file surfaces while training)."""
        from PIL import Image

        for files in (self.train, self.val, self.test):
            for path in (files.paths if files is not None else []):
                try:
                    with Image.open(path) as image:
                        image.load()
                except Exception as exc:  # pillow raises OSError, SyntaxError, ValueError, ...
                    return path, " ".join(str(exc).split())[:120] or type(exc).__name__
        return None

    def describe(self) -> str:
        counts = ", ".join(f"{len(files)} {name}" for name, files in
                           (("train", self.train), ("val", self.val), ("test", self.test)) if files)
        colour = "grayscale" if self.channels == 1 else "colour"
        return f"{self.root} ({len(self.labels)} classes, {counts} images, {colour})"


def load_image_folders(path: Path) -> dict:
    """Scan `path` into the fields of a `Dataset` (no arrays: `folders` streams the pixels)."""
    path = Path(path)
    splits = _split_folders(path)
    classes: dict[str, list[str]] = {name: _class_folders(folder) for name, folder in splits.items()}
    labels = classes["train"]
    for name, names in classes.items():
        if names != labels:
            missing = sorted(set(labels) - set(names))
            extra = sorted(set(names) - set(labels))
            detail = "; ".join(part for part in (
                f"missing in {name}/: {', '.join(missing)}" if missing else "",
                f"only in {name}/: {', '.join(extra)}" if extra else "") if part)
            raise KerasmlError(f"{splits[name]} has other class folders than {splits['train']} ({detail}); "
                               "give every split the same class folders")

    scans = {name: _scan_split(folder, labels) for name, folder in splits.items()}
    skipped = sum(scan.skipped for scan in scans.values())
    formats: dict[str, int] = {}
    sizes: list[int] = []
    modes: list[tuple[str, str]] = []
    for scan in scans.values():
        for fmt, count in scan.formats.items():
            formats[fmt] = formats.get(fmt, 0) + count
        sizes += scan.sizes
        modes += scan.modes
    channels = _channels(modes)
    for scan in scans.values():   # which files TensorFlow decodes itself depends on the channels
        scan.files.native[:] = [fmt in NATIVE_FORMATS[channels] and mode != "CMYK" and not rotated
                                for fmt, mode, rotated in scan.kinds]
    folders = ImageFolders(
        root=path, labels=labels, train=scans["train"].files,
        val=scans["val"].files if "val" in scans else None,
        test=scans["test"].files if "test" in scans else None,
        channels=channels, default_size=_default_size(sizes), skipped=skipped, formats=formats)
    note = None
    if skipped:
        examples = [example for scan in scans.values() for example in scan.skipped_examples][:3]
        note = (f"warning: skipped {skipped} file{'s' if skipped != 1 else ''} pillow cannot read as "
                f"images (e.g. {', '.join(examples)})")
    return dict(name=path.resolve().name, source=str(path), x_train=None, y_train=None,
                labels=labels, folders=folders, note=note)


def image_dataset(files: ImageFiles, size: int, channels: int, shuffle_seed: int | None = None,
                  cache: bool = False):
    """The decoder: paths → (uint8 image, label), decoded in parallel and shuffled (seeded):
    streamed, the paths are shuffled before decoding; cached, the decoded images after the cache."""
    from kerasml.libs import tensorflow
    tf = tensorflow()

    data = tf.data.Dataset.from_tensor_slices((files.paths, files.native, files.labels))
    if shuffle_seed is not None and not cache:
        data = data.shuffle(len(files), seed=shuffle_seed, reshuffle_each_iteration=True)

    def with_tensorflow(path):
        image = tf.io.decode_image(tf.io.read_file(path), channels=channels, expand_animations=False)
        return tf.ensure_shape(image, [None, None, channels])

    def with_pillow(path):
        image = tf.numpy_function(lambda p: _pillow_pixels(p, channels), [path], tf.uint8, stateful=False)
        return tf.ensure_shape(image, [None, None, channels])

    def decode(path, native, label):
        image = tf.cond(native, lambda: with_tensorflow(path), lambda: with_pillow(path))
        image = tf.image.resize(image, (size, size), method="bilinear", antialias=True)
        image = tf.cast(tf.clip_by_value(tf.round(image), 0, 255), tf.uint8)
        return image, label

    data = data.map(decode, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    if cache:
        data = data.cache()
        if shuffle_seed is not None:
            data = data.shuffle(len(files), seed=shuffle_seed, reshuffle_each_iteration=True)
    return data


def _pillow_pixels(path: bytes, channels: int) -> np.ndarray:
    from PIL import Image, ImageOps

    with Image.open(path.decode() if isinstance(path, bytes) else path) as image:
        image = ImageOps.exif_transpose(image)
        image = image.convert("L" if channels == 1 else "RGB")
        pixels = np.asarray(image, dtype=np.uint8)
    return pixels.reshape(pixels.shape[0], pixels.shape[1], channels)


def _visible(entry: Path) -> bool:
    return not entry.name.startswith(".") and entry.name != "__MACOSX"   # .DS_Store, zip debris


def _split_folders(path: Path) -> dict[str, Path]:
    if not path.is_dir():
        raise KerasmlError(f"data path {path} is not a folder")
    folders = sorted(entry for entry in path.iterdir() if entry.is_dir() and _visible(entry))
    splits: dict[str, Path] = {}
    for folder in folders:
        split = SPLIT_NAMES.get(folder.name.lower())
        if split is not None:
            if split in splits:
                raise KerasmlError(f"{path} has both {splits[split].name}/ and {folder.name}/; keep one")
            splits[split] = folder
    if not splits:
        return {"train": path}
    if "train" not in splits:
        raise KerasmlError(f"{path} has {', '.join(p.name + '/' for p in splits.values())} but no train/; "
                           "put the training images in train/<class>/")
    others = [folder.name for folder in folders if SPLIT_NAMES.get(folder.name.lower()) is None]
    if others:
        raise KerasmlError(f"{path} mixes split folders (train/, ...) with other folders ({', '.join(others)}); "
                           "move every class folder inside train/, val/ and test/")
    return splits


def _class_folders(folder: Path) -> list[str]:
    names = sorted(entry.name for entry in folder.iterdir() if entry.is_dir() and _visible(entry))
    if not names:
        loose = sum(1 for entry in folder.iterdir() if entry.is_file() and _visible(entry))
        raise KerasmlError(f"{folder} has no class folders{f' ({loose} loose files)' if loose else ''}; "
                           "put the images of each class in a folder named after it, "
                           f"e.g. {folder}/cat/*.jpg and {folder}/dog/*.jpg")
    if len(names) == 1:
        raise KerasmlError(f"{folder} has only one class folder ({names[0]}); a classifier needs at least two")
    return names


@dataclasses.dataclass
class _Scan:
    files: ImageFiles
    sizes: list[int]
    modes: list[tuple[str, str]]                  # (path, pillow mode)
    kinds: list[tuple[str, str, bool]]            # (format, mode, needs EXIF rotation) per file
    formats: dict[str, int]
    skipped: int
    skipped_examples: list[str]


def _scan_split(folder: Path, labels: list[str]) -> _Scan:
    """Read every file's header: pillow says whether it is an image, its format, size and mode."""
    from PIL import Image

    paths: list[str] = []
    numbers: list[int] = []
    kinds: list[tuple[str, str, bool]] = []
    sizes: list[int] = []
    modes: list[tuple[str, str]] = []
    formats: dict[str, int] = {}
    skipped, examples = 0, []
    for number, label in enumerate(labels):
        class_folder = folder / label
        found = 0
        for file in _files(class_folder):
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")   # e.g. DecompressionBombWarning, EXIF oddities
                    with Image.open(file) as image:
                        fmt, mode, (width, height) = image.format or "?", image.mode, image.size
                        rotated = fmt == "JPEG" and image.getexif().get(EXIF_ORIENTATION, 1) not in (1, None)
            except Exception:  # pillow raises many types (UnidentifiedImageError, OSError, SyntaxError)
                skipped += 1
                if len(examples) < 3:
                    examples.append(str(file.relative_to(folder.parent)))
                continue
            found += 1
            paths.append(str(file))
            numbers.append(number)
            kinds.append((fmt, mode, rotated))
            sizes.append(min(width, height))
            modes.append((str(file), mode))
            formats[fmt] = formats.get(fmt, 0) + 1
        if not found:
            raise KerasmlError(f"{class_folder} has no images pillow can read; add images or remove the folder")
    files = ImageFiles(paths, np.asarray(numbers, dtype=np.int64), np.zeros(len(paths), dtype=bool))
    return _Scan(files, sizes, modes, kinds, formats, skipped, examples)


def _files(folder: Path):
    """Visible files below a class folder, subfolders included, in a stable order."""
    for entry in sorted(folder.iterdir()):
        if not _visible(entry):
            continue
        if entry.is_dir():
            yield from _files(entry)
        elif entry.is_file():
            yield entry


def _channels(modes: list[tuple[str, str]]) -> int:
    """1 when every image is gray: by pillow mode, or RGB files whose channels are all equal."""
    if any(mode not in GRAY_MODES and mode not in ("RGB", "RGBA", "P", "PA") for _, mode in modes):
        return 3                                  # CMYK, YCbCr, LAB, HSV: colour
    coloured = [path for path, mode in modes if mode not in GRAY_MODES]
    if not coloured:
        return 1
    rng = np.random.default_rng(0)
    for index in rng.permutation(len(coloured))[:COLOUR_SAMPLE]:
        pixels = _pillow_pixels(coloured[index], 3).astype(np.int16)
        # JPEG rounding leaves gray pixels a level or two apart; colour differs by far more.
        if np.abs(pixels[..., 0] - pixels[..., 1]).max() > 2 or np.abs(pixels[..., 0] - pixels[..., 2]).max() > 2:
            return 3
    return 1


def _default_size(sizes: list[int]) -> int:
    return int(min(MAX_SIZE, max(MIN_SIZE, round(float(np.median(sizes))))))
