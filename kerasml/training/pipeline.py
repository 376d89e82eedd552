"""The input pipeline: images to batches the network takes, fast enough to keep a GPU busy.

Arrays are scaled once and cached in memory; image folders are decoded in parallel and, when
they fit (folders.CACHE_BUDGET), cached decoded, so later epochs read memory rather than disk.
Both prefetch, so the next batch is ready while the current one trains. Augmentation happens
here, on training batches only, so none of it ends up in the converted model.
"""

from __future__ import annotations

from kerasml.libs import tensorflow
from kerasml.record import Preprocessing
from kerasml.training.architectures import Augmentation
from kerasml.training.augment import augment_batches

tf = tensorflow()

SCALE_CHUNK = 1000   # images scaled per call when arrays are cached


def array_batches(x, y, num_classes: int, preprocessing: Preprocessing, batch_size: int,
                  shuffle_seed: int | None = None, augment: Augmentation | None = None):
    """Arrays to tf.data: scale pixels as the record says, one-hot labels, cache in memory,
    augment in training only."""
    # Scaled a thousand images per call rather than one: on two cores the per-image calls took
    # five seconds of the first epoch, once per fit. Same values, same order (shuffled after the cache).
    data = tf.data.Dataset.from_tensor_slices((x, y)).batch(SCALE_CHUNK)
    data = data.map(_scaler(num_classes, preprocessing), num_parallel_calls=tf.data.AUTOTUNE).unbatch()
    # unbatch() forgets the length; Keras needs it for its progress bar and its epochs.
    data = data.apply(tf.data.experimental.assert_cardinality(len(x))).cache()
    if shuffle_seed is not None:
        data = data.shuffle(len(x), seed=shuffle_seed, reshuffle_each_iteration=True)
    data = data.batch(batch_size)
    if augment:
        data = augment_batches(data, augment, shuffle_seed)
    return data.prefetch(tf.data.AUTOTUNE)


def image_batches(images, num_classes: int, preprocessing: Preprocessing, batch_size: int,
                  shuffle_seed: int | None = None, augment: Augmentation | None = None):
    """Decoded (uint8 image, label) pairs, already shuffled (and cached, see folders.py), to
    scaled batches."""
    data = images.map(_scaler(num_classes, preprocessing), num_parallel_calls=tf.data.AUTOTUNE)
    data = data.batch(batch_size)
    if augment:
        data = augment_batches(data, augment, shuffle_seed, photos=True, flip=preprocessing.channels == 3)
    return data.prefetch(tf.data.AUTOTUNE)


def _scaler(num_classes: int, preprocessing: Preprocessing):
    """What Core ML's image preprocessing will do: channel order, then `pixel * scale + bias`."""
    def scaled(image, label):
        return preprocessing.scale_pixels(tf.cast(image, tf.float32)), tf.one_hot(label, num_classes)

    return scaled

