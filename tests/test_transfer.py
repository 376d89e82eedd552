"""Transfer learning: backbones, their weights (offline: a file the test saves itself), the recorded
input scaling (RGB and caffe-style BGR), and the fine-tuned model through convert, verify and report."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from kerasml.errors import KerasmlError
from conftest import make_shapes, quiet

# Tiny and quick: MobileNetV3Small at a quarter width on 32x32 images (its minimum size).
TINY = dict(arch="mobilenetv3small", width=0.25, image_size=32, batch_size=16)


@pytest.fixture(scope="module")
def shapes(tmp_path_factory):
    return make_shapes(tmp_path_factory.mktemp("photos") / "shapes", per_class=12)


@pytest.fixture(scope="module")
def saved_backbone(tmp_path_factory):
    """A MobileNetV3Small backbone saved with save_weights, its first kernel set to a known pattern
    so that loading it is visible (random initial weights would also differ between runs)."""
    import keras

    from kerasml.training.backbones import BACKBONES, load_backbone
    keras.utils.set_random_seed(7)
    backbone = load_backbone(BACKBONES["mobilenetv3small"], (32, 32, 3), "none", width=0.25)
    conv = next(layer for layer in backbone.layers if isinstance(layer, keras.layers.Conv2D))
    kernel = np.linspace(-0.5, 0.5, np.prod(conv.kernel.shape), dtype=np.float32).reshape(conv.kernel.shape)
    conv.kernel.assign(kernel)
    path = tmp_path_factory.mktemp("weights") / "mobilenetv3small.weights.h5"
    backbone.save_weights(path)
    return path, kernel


@pytest.fixture(scope="module")
def fine_tuned(tmp_path_factory, shapes, saved_backbone):
    from kerasml.training.train import TrainOptions, train

    out = tmp_path_factory.mktemp("fine_tuned") / "shapes.keras"
    lines: list[str] = []
    result = train(TrainOptions(data=shapes, epochs=2, weights=str(saved_backbone[0]), out=out, quiet=True,
                                **TINY), say=lines.append)
    return result, lines


@pytest.mark.slow
def test_fine_tuning_starts_from_the_weights_file(fine_tuned, saved_backbone):
    import keras

    from kerasml.training.backbones import first_conv_kernel
    result, lines = fine_tuned
    model = keras.saving.load_model(result.model_path)
    # The first convolution is below the unfrozen top blocks: it still holds the file's kernel.
    np.testing.assert_array_equal(first_conv_kernel(model), saved_backbone[1])
    transfer = result.record.extra["transfer"]
    assert transfer["weights"] == str(saved_backbone[0].resolve())
    assert [phase["name"] for phase in transfer["phases"]] == ["head", "fine-tune"]
    assert transfer["phases"][1]["learning_rate"] == pytest.approx(transfer["phases"][0]["learning_rate"] / 10)
    assert result.record.epochs_run == 2
    assert any(line.startswith("fine-tune:") for line in lines)
    # MobileNetV3 rescales by itself: the record (and so Core ML) passes raw 0-255 pixels.
    preprocessing = result.record.preprocessing
    assert (preprocessing.scale, preprocessing.bias, preprocessing.channel_order) == (1.0, [0.0] * 3, "rgb")
    assert (preprocessing.height, preprocessing.channels) == (32, 3)


@pytest.mark.slow
def test_fine_tuned_model_converts_with_no_flags_verifies_and_reports(fine_tuned, shapes, tmp_path):
    from kerasml.conversion.to_coreml import ConvertOptions, convert
    from kerasml.report.build import report
    from kerasml.checks.verify import verify

    model = fine_tuned[0].model_path
    coreml = convert(ConvertOptions(model=model, out=tmp_path / "shapes.mlmodel"), say=quiet, warn=quiet).path
    result = verify(coreml, model, data=shapes)
    assert result.passed, [check.detail for check in result.checks]
    assert result.top1_agreement == 1.0 and result.samples == 36
    # The training folder itself would be reported on its held-out validation split; a copy of it
    # is "other data", so the report reads all 36 images, as verify did.
    import shutil
    other = shutil.copytree(shapes, tmp_path / "same_images")
    written = report(model, data=other, out_dir=tmp_path / "report", say=quiet)
    assert (written.folder / "report.md").is_file() and written.samples == 36
    assert written.accuracy == pytest.approx(result.keras_accuracy)   # the same scaling as verify's


def test_imagenet_offline_is_one_line_naming_the_alternatives(monkeypatch, tmp_path):
    """Keras' own download path, with an empty cache and no network."""
    import urllib.error

    from keras.src.backend import config
    from keras.src.utils import file_utils

    from kerasml.training.backbones import BACKBONES, load_backbone

    def offline(*args, **kwargs):
        raise urllib.error.URLError("[Errno -2] Name or service not known")

    monkeypatch.setattr(config, "_KERAS_DIR", str(tmp_path / "keras-home"))
    monkeypatch.setattr(file_utils, "urlretrieve", offline)
    with pytest.raises(KerasmlError) as error:
        load_backbone(BACKBONES["mobilenetv3small"], (32, 32, 3), "imagenet", width=0.75)
    message = str(error.value)
    assert "--weights none" in message and "--weights FILE" in message and "\n" not in message
    assert re.search(r"put \S*mobilenet_v3_small\S*_no_top\S*\.h5 into ~/\.keras/models", message), message


def test_weights_that_do_not_fit_the_backbone(tmp_path, saved_backbone):
    from kerasml.training.backbones import BACKBONES, load_backbone
    with pytest.raises(KerasmlError, match="does not fit the mobilenetv2 backbone"):
        load_backbone(BACKBONES["mobilenetv2"], (32, 32, 3), str(saved_backbone[0]), width=0.35)
    not_weights = tmp_path / "notes.h5"
    not_weights.write_text("not an HDF5 file")
    with pytest.raises(KerasmlError, match="does not fit"):
        load_backbone(BACKBONES["mobilenetv3small"], (32, 32, 3), str(not_weights), width=0.25)


def test_bad_transfer_options_fail_before_training(tmp_path, shapes):
    from kerasml.training.train import TrainOptions, train
    out = tmp_path / "model.keras"
    with pytest.raises(KerasmlError, match="no such file"):
        train(TrainOptions(data=shapes, arch="mobilenetv2", weights=str(tmp_path / "missing.h5"), out=out))
    with pytest.raises(KerasmlError, match="--weights applies to the pretrained backbones"):
        train(TrainOptions(data=shapes, arch="vgg", weights="imagenet", out=out))
    with pytest.raises(KerasmlError, match="at least 32x32"):
        train(TrainOptions(data=shapes, arch="mobilenetv2", weights="none", image_size=16, out=out, quiet=True),
              say=quiet)
    gray = make_shapes(tmp_path / "gray", per_class=3, gray=True)
    with pytest.raises(KerasmlError, match="takes colour images"):
        train(TrainOptions(data=gray, arch="efficientnetb0", weights="none", image_size=32, out=out, quiet=True),
              say=quiet)
    with pytest.raises(KerasmlError, match="fixed width"):
        train(TrainOptions(data=shapes, arch="resnet50", weights="none", width=0.5, image_size=32, out=out,
                           quiet=True), say=quiet)
    assert not out.exists()


def test_backbones_record_what_their_weights_expect():
    from kerasml.training.backbones import BACKBONES, input_preprocessing
    from kerasml.record import Preprocessing
    rgb = Preprocessing(224, 224, 3, 1 / 255, [0.0] * 3, "natural colour")
    mobilenet = input_preprocessing(BACKBONES["mobilenetv2"], rgb)
    pixels = np.array([[[[0, 127.5, 255]]]])
    np.testing.assert_allclose(mobilenet.scale_pixels(pixels), [[[[-1, 0, 1]]]], atol=1e-6)
    resnet = input_preprocessing(BACKBONES["resnet50"], rgb)
    assert resnet.colour == "bgr"
    # caffe style: the network sees blue first, each channel minus its ImageNet mean
    np.testing.assert_allclose(resnet.scale_pixels(np.array([[[[10, 20, 30]]]])),
                               [[[[30 - 103.939, 20 - 116.779, 10 - 123.68]]]], atol=1e-4)
    for name in ("mobilenetv3small", "efficientnetb0"):
        assert input_preprocessing(BACKBONES[name], rgb).scale == 1.0


def test_the_training_pipeline_scales_as_the_record_says():
    """The network is trained on exactly what Core ML's image preprocessing will hand it."""
    from kerasml.training.backbones import BACKBONES, input_preprocessing
    from kerasml.training.pipeline import array_batches
    from kerasml.record import Preprocessing
    resnet = input_preprocessing(BACKBONES["resnet50"], Preprocessing(2, 2, 3, 1 / 255, [0.0] * 3))
    x = np.random.default_rng(0).integers(0, 256, (4, 2, 2, 3), dtype=np.uint8)
    images, _ = next(iter(array_batches(x, np.zeros(4, np.int64), 2, resnet, 4)))
    np.testing.assert_allclose(images.numpy(), resnet.scale_pixels(x), atol=1e-4)


def test_cached_arrays_keep_each_image_with_its_label():
    """Arrays are scaled in chunks (not a multiple of the chunk here) and shuffled after the cache:
    every image comes once per epoch, scaled, beside its own label."""
    from kerasml.record import Preprocessing
    from kerasml.training.pipeline import SCALE_CHUNK, array_batches
    count = SCALE_CHUNK * 2 + 37
    labels = np.arange(count) % 10
    # Each image's pixels spell its index in base 256, so an image apart from its label shows.
    x = np.zeros((count, 2, 2, 1), np.uint8)
    x[:, 0, 0, 0], x[:, 0, 1, 0] = np.arange(count) // 256, np.arange(count) % 256
    batches = array_batches(x, labels, 10, Preprocessing(2, 2, 1, 1 / 255, [0.0]), 64, shuffle_seed=3)
    assert batches.cardinality() == -(-count // 64)   # Keras plans its epochs by this length
    epochs = []
    for _ in range(2):
        images, one_hot = zip(*batches)
        pixels = np.rint(np.concatenate(images) * 255).astype(int)
        indices = pixels[:, 0, 0, 0] * 256 + pixels[:, 0, 1, 0]
        np.testing.assert_array_equal(np.sort(indices), np.arange(count))
        np.testing.assert_array_equal(np.concatenate(one_hot).argmax(axis=1), indices % 10)
        epochs.append(indices)
    assert not np.array_equal(epochs[0], epochs[1])   # reshuffled each epoch
    assert not np.array_equal(epochs[0], np.arange(count))


@pytest.mark.slow
def test_bgr_record_converts_to_a_bgr_image_input(tmp_path):
    """The colour order travels from the record to Core ML's ImageType, and verify agrees."""
    import keras

    from kerasml.conversion.to_coreml import ConvertOptions, convert
    from kerasml.record import Preprocessing, TrainingRecord, write_record
    from kerasml.runtime import load_model
    from kerasml.checks.verify import verify

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(4, 3),
                              keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(3, activation="softmax")])
    # Strongly channel-dependent, so an RGB/BGR mix-up would show in the probabilities.
    kernel = np.zeros((3, 3, 3, 4), np.float32)
    kernel[1, 1, 0, 0], kernel[1, 1, 2, 1] = 0.05, -0.05
    model.layers[0].set_weights([kernel, np.zeros(4, np.float32)])
    path = tmp_path / "bgr.keras"
    model.save(path)
    write_record(path, TrainingRecord(preprocessing=Preprocessing(8, 8, 3, 1.0, [-103.939, -116.779, -123.68],
                                                                  "natural colour", channel_order="bgr"),
                                      labels=["a", "b", "c"]))
    coreml = convert(ConvertOptions(model=path), say=quiet, warn=quiet).path
    loaded = load_model(coreml)
    assert loaded.image.colour == "bgr" and loaded.image.bias == pytest.approx((-103.939, -116.779, -123.68))
    assert verify(coreml, path, samples=50).passed
    rgb = loaded.predict_probabilities(np.full((1, 8, 8, 3), [200, 0, 0], np.uint8))
    expected = model.predict(np.full((1, 8, 8, 3), [0 - 103.939, 0 - 116.779, 200 - 123.68], np.float32), verbose=0)
    np.testing.assert_allclose(rgb, expected, atol=1e-5)
    assert json.loads((tmp_path / "bgr.training.json").read_text())["preprocessing"]["channel_order"] == "bgr"
