"""kerasml/training/augment.py: training-time affine moves and elastic distortions, on real digits."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from kerasml.training.architectures import Augmentation  # noqa: E402
from kerasml.training.augment import (augment_batches, distort, random_affine_transforms,  # noqa: E402
                             random_displacement_field, resample)

STILL = Augmentation(rotation=0.0, shift=0.0, zoom=0.0)   # no affine move at all
ELASTIC = Augmentation(elastic=2.0, elastic_sigma=4.0)


@pytest.fixture(scope="module")
def digits():
    """32 bundled training digits, scaled to 0-1, one of each class at least."""
    from kerasml.data.sources import load_mnist_sample
    sample = load_mnist_sample()
    picks = np.random.default_rng(0).permutation(len(sample["y_train"]))[:32]
    return sample["x_train"][picks].astype(np.float32) / 255, sample["y_train"][picks]


def seed(a: int, b: int = 0):
    return tf.constant([a, b], tf.int64)


@pytest.mark.parametrize("augment", [Augmentation(), ELASTIC], ids=["affine", "affine+elastic"])
def test_shapes_and_range_kept(digits, augment):
    images, _ = digits
    out = distort(images, augment, seed(1)).numpy()
    assert out.shape == images.shape and out.dtype == np.float32
    assert out.min() >= 0.0 and out.max() <= 1.0 + 1e-6        # bilinear: no overshoot
    assert not np.allclose(out, images)


def test_colour_photos_keep_their_shape():
    photos = tf.random.stateless_uniform([4, 32, 40, 3], seed(0))
    out = distort(photos, dataclasses.replace(ELASTIC, shift=0.1), seed(2), photos=True, flip=True)
    assert out.shape == (4, 32, 40, 3)


@pytest.mark.parametrize("augment", [Augmentation(), ELASTIC], ids=["affine", "affine+elastic"])
def test_same_seed_same_images_other_seed_other_images(digits, augment):
    images, _ = digits
    first, again = distort(images, augment, seed(7)).numpy(), distort(images, augment, seed(7)).numpy()
    other = distort(images, augment, seed(8)).numpy()
    np.testing.assert_array_equal(first, again)
    assert np.abs(first - other).max() > 0.1


def test_a_clean_share_of_the_images_is_left_as_written(digits):
    """`clean`: that share of a batch passes unchanged (the test digits are undistorted), the rest is
    distorted as without it, and which ones is drawn from the seed."""
    images = np.concatenate([digits[0]] * 8)          # 256 images: the share is measurable
    distorted = distort(images, ELASTIC, seed(5)).numpy()
    mixed = distort(images, dataclasses.replace(ELASTIC, clean=0.25), seed(5)).numpy()
    unchanged = np.array([np.array_equal(m, i) for m, i in zip(mixed, images)])
    assert 0.15 < unchanged.mean() < 0.35
    np.testing.assert_array_equal(mixed[~unchanged], distorted[~unchanged])
    np.testing.assert_array_equal(mixed, distort(images, dataclasses.replace(ELASTIC, clean=0.25), seed(5)).numpy())
    np.testing.assert_array_equal(distort(images, dataclasses.replace(ELASTIC, clean=1.0), seed(5)).numpy(), images)


def test_no_move_and_strength_zero_is_the_identity(digits):
    images, _ = digits
    np.testing.assert_allclose(distort(images, STILL, seed(3)).numpy(), images, atol=1e-6)
    field = random_displacement_field(tf.shape(images), 0.0, 4.0, seed(3))
    assert np.abs(field.numpy()).max() == 0.0
    identity = random_affine_transforms(tf.shape(images), STILL, seed(3))
    np.testing.assert_allclose(resample(images, identity, field, "constant").numpy(), images, atol=1e-6)


@pytest.mark.parametrize("strength, sigma", [(1.0, 4.0), (3.0, 2.0), (2.0, 6.0)])
def test_largest_displacement_is_the_strength_and_the_field_is_smooth(strength, sigma):
    field = random_displacement_field(tf.constant([16, 28, 28, 1]), strength, sigma, seed(5)).numpy()
    assert field.shape == (16, 28, 28, 2)
    np.testing.assert_allclose(np.abs(field).max(axis=(1, 2, 3)), strength, rtol=1e-5)
    # Smooth: neighbouring pixels move nearly together (raw noise would differ by ~strength/2).
    step = np.abs(np.diff(field, axis=1)).mean() + np.abs(np.diff(field, axis=2)).mean()
    assert step < strength / sigma


@pytest.mark.parametrize("fill_mode", ["CONSTANT", "REFLECT"])
def test_both_resamplers_agree_on_a_pure_affine_move(digits, fill_mode):
    """The elastic path reads pixels from affine(pixel + displacement); with no displacement it must
    reproduce TensorFlow's projective-transform kernel, edges included (black for digits, mirrored
    for photos), so the two conventions match."""
    images, _ = digits
    transforms = random_affine_transforms(tf.shape(images), Augmentation(rotation=15, shift=0.1, zoom=0.1), seed(9))
    expected = tf.raw_ops.ImageProjectiveTransformV3(
        images=images, transforms=transforms, output_shape=[28, 28], fill_value=0.0,
        interpolation="BILINEAR", fill_mode=fill_mode).numpy()
    actual = resample(images, transforms, tf.zeros([len(images), 28, 28, 2]), fill_mode.lower()).numpy()
    np.testing.assert_allclose(actual, expected, atol=1e-5)


def test_elastic_distortion_bends_strokes_without_losing_ink(digits):
    images, _ = digits
    out = distort(images, dataclasses.replace(STILL, elastic=1.5), seed(4)).numpy()
    # Locally a stroke may be stretched or squeezed, but on the whole nothing is lost or invented.
    ink_before, ink_after = images.sum(axis=(1, 2, 3)), out.sum(axis=(1, 2, 3))
    np.testing.assert_allclose(ink_after, ink_before, rtol=0.3)
    np.testing.assert_allclose(ink_after.sum(), ink_before.sum(), rtol=0.05)
    assert np.abs(out - images).max() > 0.3


@pytest.mark.slow
def test_pipeline_keeps_labels_repeats_with_its_seed_and_changes_every_epoch(digits):
    images, labels = digits

    def epochs(pipeline_seed):
        data = tf.data.Dataset.from_tensor_slices((images, labels)).batch(8)
        data = augment_batches(data, ELASTIC, pipeline_seed)
        return [[(x.numpy(), y.numpy()) for x, y in data] for _ in range(2)]

    first, again = epochs(11), epochs(11)
    for epoch in first:
        np.testing.assert_array_equal(np.concatenate([y for _, y in epoch]), labels)
    np.testing.assert_array_equal(first[0][0][0], again[0][0][0])          # same seed, same run
    assert np.abs(first[0][0][0] - first[1][0][0]).max() > 0.1             # a new distortion each epoch


@pytest.mark.slow
def test_training_with_elastic_augmentation_repeats_with_its_seed(tmp_path, small_digits_npz):
    """End to end: `kerasml train` with the default digit recipe (affine + elastic distortion),
    twice with the same seed, gives the same weights: the distortions come from the seed, not
    from the clock."""
    import keras

    from kerasml.training import architectures
    from kerasml.training.train import TrainOptions, train

    assert architectures.get_architecture("kerasml").augment.elastic > 0
    weights = []
    for run in range(2):
        result = train(TrainOptions(data=small_digits_npz, arch="kerasml", epochs=1, seed=3,
                                    out=tmp_path / f"run{run}.keras", quiet=True), say=lambda m: None)
        weights.append(keras.saving.load_model(result.model_path).get_weights())
    for a, b in zip(*weights):
        np.testing.assert_allclose(a, b, atol=1e-6)
