"""The data as the recipe uses it: loaded, split (seeded) and with its pixel scaling decided.

Arrays (MNIST, .npz, IDX) are held in memory and cached; image folders stream from disk through
tf.data (see kerasml/data/folders.py) and are never held whole.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Callable

import numpy as np

from kerasml.data import Dataset, load_dataset
from kerasml.data.splits import split_validation, with_test_split
from kerasml.errors import KerasmlError
from kerasml.record import Preprocessing
from kerasml.training.architectures import Augmentation
from kerasml.training.backbones import default_image_size
from kerasml.training.options import NORMALIZATIONS, TrainOptions
from kerasml.training.pipeline import array_batches, image_batches


@dataclasses.dataclass
class PreparedData:
    """The data as the recipe uses it: the splits, their sizes and how pixels become inputs."""

    dataset: Dataset
    preprocessing: Preprocessing
    counts: dict[str, int]                       # images per split: train, validation, test
    y_test: np.ndarray | None
    extra: dict                                  # provenance for the record
    splits: dict                                 # name -> (x, y) arrays or ImageFiles
    size: int | None = None                      # image folders: the square side

    @property
    def streamed(self) -> bool:
        return self.dataset.folders is not None

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return (self.preprocessing.height, self.preprocessing.width, self.preprocessing.channels)

    def batches(self, split: str, batch_size: int, shuffle_seed: int | None = None,
                augment: Augmentation | None = None):
        """tf.data batches of scaled images and one-hot labels; shuffled and augmented for training."""
        num_classes = self.dataset.num_classes
        if not self.streamed:
            x, y = self.splits[split]
            if split != "train":
                batch_size = 1000   # arrays: large evaluation batches, as before
            return array_batches(x, y, num_classes, self.preprocessing, batch_size, shuffle_seed, augment)
        folders, files = self.dataset.folders, self.splits[split]
        images = folders.dataset(files, self.size, shuffle_seed, cache=folders.fits_in_memory(files, self.size))
        return image_batches(images, num_classes, self.preprocessing, batch_size, shuffle_seed, augment)


def prepare_data(options: TrainOptions, say: Callable[[str], None] = print) -> PreparedData:
    """Load the data, split off validation images (seeded) and decide the preprocessing."""
    scale, bias = NORMALIZATIONS[options.normalize]
    dataset = load_dataset(options.dataset, options.data, say=say)
    extra: dict = {"normalize": options.normalize, "val_split": options.val_split}
    if options.data is not None:
        extra["data"] = str(Path(options.data).resolve())   # so `kerasml report` finds it again
    if dataset.folders is not None:
        return _prepare_folders(options, dataset, scale, bias, extra, say)
    if options.image_size is not None:
        raise KerasmlError("--image-size applies to image folders; array data keeps its own size")
    if dataset.x_train is None:
        raise KerasmlError(f"{dataset.source} has test images only; training needs train-* files or x_train")
    if options.test_data is not None:
        dataset = with_test_split(dataset, load_dataset(path=options.test_data, say=say))
    x_train, y_train, x_val, y_val = split_validation(dataset, options.val_split, options.seed)
    channels = x_train.shape[3]
    preprocessing = Preprocessing(height=x_train.shape[1], width=x_train.shape[2], channels=channels,
                                  scale=scale, bias=[bias] * channels)
    splits = {"train": (x_train, y_train), "validation": (x_val, y_val),
              "test": (dataset.x_test, dataset.y_test)}
    counts = {"train": len(x_train), "validation": len(x_val),
              "test": 0 if dataset.x_test is None else len(dataset.x_test)}
    return PreparedData(dataset, preprocessing, counts, dataset.y_test, extra, splits)


def _prepare_folders(options: TrainOptions, dataset: Dataset, scale: float, bias: float, extra: dict,
                     say: Callable[[str], None]) -> PreparedData:
    folders = dataset.folders
    if options.test_data is not None:
        raise KerasmlError("--test-data works with array data; for image folders put the test "
                           "images in a test/ folder beside train/")
    size = options.image_size or default_image_size(options.arch, folders.default_size)
    train_files, val_files = folders.split_validation(options.val_split, options.seed)
    if folders.val is not None and options.val_split != TrainOptions.val_split:
        say(f"note: {folders.root} has a val/ folder, so --val-split is not used")
    channels = folders.channels
    preprocessing = Preprocessing(height=size, width=size, channels=channels, scale=scale,
                                  bias=[bias] * channels,
                                  ink="natural colour" if channels == 3 else "natural grayscale")
    extra.update(
        image_size=size,
        image_size_from="--image-size" if options.image_size else "median shorter side of the images, within 28-224",
        resize="stretched to a square, bilinear with antialiasing (aspect ratio not kept)",
        validation_from="val/ folder" if folders.val is not None else "a seeded share of each class",
        formats=dict(folders.formats), skipped_files=folders.skipped)
    counts = {"train": len(train_files), "validation": len(val_files),
              "test": 0 if folders.test is None else len(folders.test)}
    say(f"{folders.describe()}: training at {size}x{size}")
    splits = {"train": train_files, "validation": val_files, "test": folders.test}
    y_test = None if folders.test is None else folders.test.labels
    return PreparedData(dataset, preprocessing, counts, y_test, extra, splits, size)
