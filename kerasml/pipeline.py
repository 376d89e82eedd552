"""The input pipeline: images to batches the network takes, fast enough to keep a GPU busy.

Arrays are scaled once and cached in memory; image folders are decoded in parallel and, when
they fit (folders.CACHE_BUDGET), cached decoded, so later epochs read memory rather than disk.
Both prefetch, so the next batch is ready while the current one trains. Augmentation happens
here, on training batches only, so none of it ends up in the converted model.
"""

from __future__ import annotations

import contextlib
import math

import numpy as np

from kerasml.architectures import Augmentation
from kerasml.errors import KerasmlError
from kerasml.libs import tensorflow
from kerasml.record import Preprocessing

tf = tensorflow()


def array_batches(x, y, num_classes: int, preprocessing: Preprocessing, batch_size: int,
                  shuffle_seed: int | None = None, augment: Augmentation | None = None):
    """Arrays to tf.data: scale pixels as the record says, one-hot labels, cache in memory,
    augment in training only."""
    data = tf.data.Dataset.from_tensor_slices((x, y))
    data = data.map(_scaler(num_classes, preprocessing), num_parallel_calls=tf.data.AUTOTUNE).cache()
    if shuffle_seed is not None:
        data = data.shuffle(len(x), seed=shuffle_seed, reshuffle_each_iteration=True)
    data = data.batch(batch_size)
    if augment:
        data = data.map(lambda images, labels: (random_affine(images, augment), labels),
                        num_parallel_calls=tf.data.AUTOTUNE)
    return data.prefetch(tf.data.AUTOTUNE)


def image_batches(images, num_classes: int, preprocessing: Preprocessing, batch_size: int,
                  augment: Augmentation | None = None):
    """Decoded (uint8 image, label) pairs, already shuffled (and cached, see folders.py), to
    scaled batches."""
    data = images.map(_scaler(num_classes, preprocessing), num_parallel_calls=tf.data.AUTOTUNE)
    data = data.batch(batch_size)
    if augment:
        flip = preprocessing.channels == 3
        data = data.map(lambda images, labels: (random_affine(images, augment, photos=True, flip=flip), labels),
                        num_parallel_calls=tf.data.AUTOTUNE)
    return data.prefetch(tf.data.AUTOTUNE)


def _scaler(num_classes: int, preprocessing: Preprocessing):
    """What Core ML's image preprocessing will do: channel order, then `pixel * scale + bias`."""
    scale = np.float32(preprocessing.scale)
    bias = np.asarray(preprocessing.bias, dtype=np.float32)
    reverse = preprocessing.channels == 3 and preprocessing.channel_order == "bgr"

    def scaled(image, label):
        image = tf.cast(image, tf.float32)
        if reverse:
            image = tf.reverse(image, axis=[-1])
        return image * scale + bias, tf.one_hot(label, num_classes)

    return scaled


def random_affine(images, augment: Augmentation, photos: bool = False, flip: bool = False):
    """Per image, a random rotation, zoom and shift, as handwriting varies, done as one projective
    transform (one resampling, not three). Training batches only, so none of it is in the converted
    model. Photos fill the edges by reflection rather than black and, in colour, are also mirrored
    left to right (a cat facing left is still a cat)."""
    count = tf.shape(images)[0]
    height = tf.cast(tf.shape(images)[1], tf.float32)
    width = tf.cast(tf.shape(images)[2], tf.float32)
    angle = tf.random.uniform([count], -1.0, 1.0) * (augment.rotation * math.pi / 180.0)
    scale = 1.0 + tf.random.uniform([count], -augment.zoom, augment.zoom)   # > 1 enlarges
    shift_x = tf.random.uniform([count], -1.0, 1.0) * augment.shift * width
    shift_y = tf.random.uniform([count], -1.0, 1.0) * augment.shift * height
    centre_x, centre_y = (width - 1.0) / 2.0, (height - 1.0) / 2.0
    # The transform maps output pixels to input pixels: the inverse rotation and zoom about the centre.
    cos, sin = tf.cos(angle) / scale, tf.sin(angle) / scale
    zeros = tf.zeros([count])
    transforms = tf.stack([cos, -sin, centre_x - cos * centre_x + sin * centre_y - shift_x,
                           sin, cos, centre_y - sin * centre_x - cos * centre_y - shift_y,
                           zeros, zeros], axis=1)
    images = tf.raw_ops.ImageProjectiveTransformV3(
        images=images, transforms=transforms, output_shape=tf.shape(images)[1:3], fill_value=0.0,
        interpolation="BILINEAR", fill_mode="REFLECT" if photos else "CONSTANT")
    if flip:
        mirrored = tf.random.uniform([count, 1, 1, 1]) < 0.5
        images = tf.where(mirrored, tf.reverse(images, axis=[2]), images)
    return images


@contextlib.contextmanager
def decoding_errors(dataset):
    """An image that passed the header check but cannot be decoded (truncated, damaged) stops
    with one line naming the file instead of a TensorFlow traceback."""
    try:
        yield
    except tf.errors.OpError:
        if dataset.folders is None:
            raise
        damaged = dataset.folders.find_damaged()
        if damaged is None:
            raise
        raise KerasmlError(f"cannot decode {damaged[0]} ({damaged[1]}); remove or re-save that image") from None
