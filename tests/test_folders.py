"""Image-folder datasets: scanning and its checks, streaming decode, and folder → Core ML with no flags."""

from __future__ import annotations

import math

import numpy as np
import pytest
from PIL import Image, ImageDraw

from kerasml.data import load_dataset
from kerasml.errors import KerasmlError

from conftest import make_shapes, make_split_shapes, quiet

def test_class_folders_become_sorted_labels_and_skips_are_counted(tmp_path):
    root = make_shapes(tmp_path / "shapes", per_class=5)
    (root / "circle" / "notes.txt").write_text("not an image")
    (root / "circle" / ".DS_Store").write_bytes(b"\0\1")
    (root / ".thumbnails").mkdir()
    (root / ".thumbnails" / "x.png").write_bytes(b"")
    notes = []
    dataset = load_dataset(path=root, say=notes.append)
    assert dataset.labels == ["circle", "square", "triangle"]
    assert dataset.x_train is None and dataset.folders is not None
    assert dataset.image_shape == (32, 32, 3)              # median shorter side of 32 and 48 px images
    assert len(dataset.folders.train) == 15 and dataset.folders.skipped == 1
    assert dataset.folders.formats == {"PNG": 9, "JPEG": 6}
    assert notes == ["warning: skipped 1 file pillow cannot read as images (e.g. shapes/circle/notes.txt)"]


def test_gray_images_give_one_channel(tmp_path):
    root = make_shapes(tmp_path / "gray", per_class=3, gray=True)
    for fmt in ("bmp", "gif"):          # TensorFlow decodes these in colour only: pillow makes them gray
        Image.open(root / "square" / "square000.png").save(root / "square" / f"copy.{fmt}")
    gray = load_dataset(path=root, say=quiet)
    assert gray.folders.channels == 1 and gray.image_shape == (32, 32, 1)
    files = gray.folders.train
    copies = [files.paths.index(str(root / "square" / f"copy.{fmt}")) for fmt in ("bmp", "gif")]
    assert not files.native[copies].any() and files.native.sum() == 9
    x, _ = gray.folders.arrays(files.subset(copies))
    assert x.shape == (2, 32, 32, 1)
    # RGB files whose three channels are equal (a gray photo saved as RGB) are gray too.
    root = make_shapes(tmp_path / "rgb-gray", per_class=3, gray=True)
    for path in root.glob("*/*.png"):
        Image.open(path).convert("RGB").save(path)
    assert load_dataset(path=root, say=quiet).folders.channels == 1


def test_pillow_decodes_what_tensorflow_cannot_and_both_agree(tmp_path):
    root = make_shapes(tmp_path / "shapes", per_class=2)
    original = root / "circle" / "circle000.png"
    Image.open(original).save(root / "circle" / "copy.tiff")     # TIFF: pillow only
    dataset = load_dataset(path=root, say=quiet)
    files = dataset.folders.train
    tiff = files.paths.index(str(root / "circle" / "copy.tiff"))
    png = files.paths.index(str(original))
    assert files.native[png] and not files.native[tiff]
    x, _ = dataset.folders.arrays(files.subset([png, tiff]), size=32)
    assert x.shape == (2, 32, 32, 3) and x.dtype == np.uint8
    assert np.abs(x[0].astype(int) - x[1]).max() <= 1            # same pixels, whichever decoder


def test_exif_rotated_jpeg_is_turned_upright(tmp_path):
    root = make_shapes(tmp_path / "shapes", per_class=2)
    upright = Image.new("RGB", (40, 20), (255, 255, 255))
    ImageDraw.Draw(upright).rectangle([0, 0, 19, 19], fill=(0, 0, 0))   # black left half
    exif = Image.Exif()
    exif[0x0112] = 6                                             # "rotate 90° clockwise to view"
    upright.transpose(Image.Transpose.ROTATE_90).save(root / "square" / "phone.jpg", exif=exif.tobytes())
    folders = load_dataset(path=root, say=quiet).folders
    index = folders.train.paths.index(str(root / "square" / "phone.jpg"))
    assert not folders.train.native[index]
    x, _ = folders.arrays(folders.train.subset([index]), size=32)
    assert x[0, :, :8].mean() < 60 and x[0, :, -8:].mean() > 200  # dark on the left, as photographed


def test_train_val_test_folders(tmp_path):
    dataset = load_dataset(path=make_split_shapes(tmp_path / "split"), say=quiet)
    folders = dataset.folders
    assert (len(folders.train), len(folders.val), len(folders.test)) == (48, 12, 18)
    train, val = folders.split_validation(0.2, seed=1)
    assert val is folders.val and train is folders.train         # val/ wins over --val-split
    x, y, what = dataset.labelled_images(limit=5)
    assert x.shape == (5, 32, 32, 3) and what == "test split" and len(y) == 5


def test_validation_is_a_seeded_share_of_each_class(tmp_path):
    folders = load_dataset(path=make_shapes(tmp_path / "shapes", per_class=10), say=quiet).folders
    train, val = folders.split_validation(0.2, seed=7)
    assert np.bincount(val.labels).tolist() == [2, 2, 2] and len(train) == 24
    assert not set(train.paths) & set(val.paths)
    assert folders.split_validation(0.2, seed=7)[1].paths == val.paths


@pytest.mark.parametrize("layout, message", [
    ({}, "no class folders"),
    ({"cat/a.png": "image"}, "only one class folder"),
    ({"cat/a.png": "image", "dog/readme.txt": "text"}, "dog has no images"),
    ({"a.png": "image", "b.png": "image"}, r"no class folders \(2 loose files\)"),
    ({"train/cat/a.png": "image", "train/dog/a.png": "image", "test/cat/a.png": "image",
      "test/bird/a.png": "image"}, "missing in test/: dog; only in test/: bird"),
    ({"val/cat/a.png": "image", "val/dog/a.png": "image"}, "no train/"),
    ({"train/cat/a.png": "image", "train/dog/a.png": "image", "extra/x.png": "image"}, "mixes split folders"),
    ({"train/cat/a.png": "image", "train/dog/a.png": "image", "val/cat/a.png": "image",
      "val/dog/a.png": "image", "validation/cat/a.png": "image"}, "both val/ and validation/"),
])
def test_bad_folder_layouts_fail_with_one_clear_line(tmp_path, layout, message):
    for name, kind in layout.items():
        path = tmp_path / "data" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if kind == "image":
            Image.new("RGB", (16, 16), (9, 9, 9)).save(path)
        else:
            path.write_text("hello")
    (tmp_path / "data").mkdir(exist_ok=True)
    with pytest.raises(KerasmlError, match=message):
        load_dataset(path=tmp_path / "data", say=quiet)


def test_folder_options_are_checked(tmp_path, small_digits_npz):
    from kerasml.training.prepared import prepare_data
    from kerasml.training.train import TrainOptions, train
    with pytest.raises(KerasmlError, match="image-size applies to image folders"):
        prepare_data(TrainOptions(data=small_digits_npz, image_size=32), say=quiet)
    with pytest.raises(KerasmlError, match="normalize"):
        train(TrainOptions(data=small_digits_npz, normalize="imagenet", out=tmp_path / "m.keras"), say=quiet)
    root = make_shapes(tmp_path / "shapes", per_class=3, gray=True)
    with pytest.raises(KerasmlError, match="test/ folder"):
        prepare_data(TrainOptions(data=root, test_data=small_digits_npz), say=quiet)
    data = prepare_data(TrainOptions(data=root, image_size=40, normalize="symmetric"), say=quiet)
    p = data.preprocessing
    assert (p.height, p.width, p.channels, p.bias, p.ink) == (40, 40, 1, [-1.0], "natural grayscale")
    assert p.scale == pytest.approx(1 / 127.5)
    batch, labels = next(iter(data.batches("train", 4, shuffle_seed=0)))
    assert batch.shape == (4, 40, 40, 1) and labels.shape == (4, 3)
    pixels = (batch.numpy() + 1) * 127.5          # symmetric scaling undone: whole 0-255 grey levels again
    assert pixels.min() >= -1e-3 and pixels.max() <= 255 + 1e-3
    np.testing.assert_allclose(pixels, np.round(pixels), atol=2e-3)
    assert pixels.max() - pixels.min() > 100    # pale paper and a darker shape, not a constant


# ---------------------------------------------------------------------------- folders to Core ML
@pytest.mark.slow
def test_folders_train_convert_and_verify_with_no_flags(tmp_path):
    from kerasml.conversion.to_coreml import ConvertOptions, convert
    from kerasml.model.inspect import inspect_model
    from kerasml.record import read_record
    from kerasml.training.train import TrainOptions, train
    from kerasml.checks.verify import verify

    data = make_split_shapes(tmp_path / "shapes")
    Image.open(data / "train" / "circle" / "circle001.jpg").save(data / "train" / "circle" / "extra.bmp")
    result = train(TrainOptions(data=data, epochs=2, batch_size=16, normalize="symmetric",
                                out=tmp_path / "shapes.keras", quiet=True), say=quiet)
    record = read_record(result.model_path)
    assert record.labels == ["circle", "square", "triangle"] and record.label_preset is None
    assert (record.preprocessing.height, record.preprocessing.channels) == (32, 3)
    assert record.preprocessing.bias == [-1.0] * 3 and record.preprocessing.ink == "natural colour"
    assert record.samples == {"train": 49, "validation": 12, "test": 18}
    assert record.extra["normalize"] == "symmetric" and record.extra["validation_from"] == "val/ folder"
    assert math.isfinite(record.test["loss"]) and result.model_path.with_name("shapes.confusion.png").is_file()

    converted = convert(ConvertOptions(model=result.model_path), say=quiet, warn=quiet)
    spec = inspect_model(converted.path)
    assert spec["inputs"][0]["colour"] == "RGB" and spec["inputs"][0]["width"] == 32
    assert spec["class_labels"] == ["circle", "square", "triangle"]
    pre = spec["image_preprocessing"][0]
    assert pre["scale"] == pytest.approx(1 / 127.5)
    assert pre["red_bias"] == pre["green_bias"] == pre["blue_bias"] == -1.0

    # The NumPy runtime checks the Core ML model against Keras on the decoded test images.
    x, y, _ = load_dataset(path=data, say=quiet).labelled_images()
    np.savez(tmp_path / "test.npz", x_test=x, y_test=y)
    checked = verify(converted.path, result.model_path, data=tmp_path / "test.npz")
    assert checked.passed, checked.lines()
    assert checked.samples == 18


def test_a_damaged_image_is_named(tmp_path):
    from kerasml.data.splits import decoding_errors

    root = make_shapes(tmp_path / "shapes", per_class=3)
    damaged = root / "circle" / "circle000.png"
    damaged.write_bytes(damaged.read_bytes()[:200])               # the header survives, the pixels do not
    dataset = load_dataset(path=root, say=quiet)
    assert len(dataset.folders.train) == 9                        # the header scan cannot tell
    with pytest.raises(KerasmlError, match=r"cannot decode .*circle000.png \(.*\); remove or re-save"):
        with decoding_errors(dataset):
            dataset.folders.arrays(dataset.folders.train)
