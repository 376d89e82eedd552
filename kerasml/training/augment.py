"""Random changes to training images: an affine move and, for handwriting, an elastic distortion.

Handwriting varies in two ways. The whole digit is rotated, shifted or resized (an affine map),
and the strokes themselves bend and wobble: an elastic distortion, a smooth random displacement
of every pixel (Simard, Steinkraus & Platt, "Best practices for convolutional neural networks
applied to visual document analysis", 2003, the classic win on small MNIST training sets).

Both work on whole batches inside the tf.data pipeline, on training batches only, so none of it
ends up in the converted model. Every batch gets its own stateless seed (a pair of integers): the
same seed gives the same images, and the pipeline draws a fresh seed for every batch of every
epoch (see `augment_batches`).
"""

from __future__ import annotations

import math

from kerasml.training.architectures import Augmentation
from kerasml.libs import tensorflow

tf = tensorflow()


def augment_batches(batches, augment: Augmentation, seed: int | None, photos: bool = False,
                    flip: bool = False):
    """Distort the images of a tf.data dataset of (images, labels) batches; labels pass unchanged.

    `tf.data.Dataset.random` supplies one seed pair per batch; re-randomised every epoch, so the
    network never sees the same distortion twice, yet a run with the same `seed` repeats exactly."""
    seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)
    return tf.data.Dataset.zip(batches, seeds).map(
        lambda batch, batch_seed: (distort(batch[0], augment, batch_seed, photos, flip), batch[1]),
        num_parallel_calls=tf.data.AUTOTUNE)


def distort(images, augment: Augmentation, seed, photos: bool = False, flip: bool = False):
    """One batch (N, H, W, C) of float images, each moved by its own random affine map and, when
    `augment.elastic` is above zero, elastically distorted, with one resampling for both (each
    bilinear resampling blurs thin strokes a little, so they are not done one after the other);
    a random `augment.clean` share of the images is left as it was.

    Photos fill the edges by reflection rather than black and, in colour, are also mirrored left
    to right (a cat facing left is still a cat)."""
    images = original = tf.convert_to_tensor(images, tf.float32)
    affine_seed, elastic_seed, flip_seed, clean_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 4))
    transforms = random_affine_transforms(tf.shape(images), augment, affine_seed)
    fill_mode = "REFLECT" if photos else "CONSTANT"
    if augment.elastic > 0:
        field = random_displacement_field(tf.shape(images), augment.elastic, augment.elastic_sigma,
                                          elastic_seed)
        images = resample(images, transforms, field, fill_mode.lower())
    elif augment.rotation or augment.shift or augment.zoom:
        # No elastic part: TensorFlow's own projective transform kernel is the fastest resampler.
        images = tf.raw_ops.ImageProjectiveTransformV3(
            images=images, transforms=transforms, output_shape=tf.shape(images)[1:3], fill_value=0.0,
            interpolation="BILINEAR", fill_mode=fill_mode)
    if flip or augment.mirror:
        mirrored = tf.random.stateless_uniform(tf.shape(images)[:1], flip_seed) < 0.5
        images = tf.where(mirrored[:, None, None, None], tf.reverse(images, axis=[2]), images)
    if augment.clean > 0:
        # The test digits are undistorted: a share of the training images stays as written, so
        # the network also learns them as they come (measured: better validation loss on digits).
        unchanged = tf.random.stateless_uniform(tf.shape(images)[:1], clean_seed) < augment.clean
        images = tf.where(unchanged[:, None, None, None], original, images)
    return images


def random_affine_transforms(shape, augment: Augmentation, seed):
    """Per image, a random rotation, zoom and shift about the centre, as the 8 numbers of a
    projective transform (TensorFlow's convention) that map each output pixel to the input pixel
    it is read from, hence the inverse rotation and zoom."""
    count = shape[0]
    height, width = tf.cast(shape[1], tf.float32), tf.cast(shape[2], tf.float32)
    seeds = tf.unstack(tf.random.experimental.stateless_split(seed, 4))

    def uniform(index, limit):   # one draw per image in [-limit, limit]
        return tf.random.stateless_uniform([count], seeds[index], -1.0, 1.0) * limit

    angle = uniform(0, augment.rotation * math.pi / 180.0)
    scale = 1.0 + uniform(1, augment.zoom)        # above 1 enlarges
    shift_x = uniform(2, augment.shift * width)
    shift_y = uniform(3, augment.shift * height)
    centre_x, centre_y = (width - 1.0) / 2.0, (height - 1.0) / 2.0
    cos, sin = tf.cos(angle) / scale, tf.sin(angle) / scale
    zeros = tf.zeros([count])
    return tf.stack([cos, -sin, centre_x - cos * centre_x + sin * centre_y - shift_x,
                     sin, cos, centre_y - sin * centre_x - cos * centre_y - shift_y,
                     zeros, zeros], axis=1)


def random_displacement_field(shape, strength: float, sigma: float, seed):
    """(N, H, W, 2) pixel displacements (dy, dx): uniform noise smoothed by a Gaussian of width
    `sigma` pixels, so neighbouring pixels move together and strokes bend instead of tearing, then
    scaled per image so its largest displacement is exactly `strength` pixels (Simard et al. scale
    by a constant instead; a fixed peak keeps the strength the same whatever sigma is)."""
    noise = tf.random.stateless_uniform([shape[0], 2, shape[1], shape[2]], seed, -1.0, 1.0)
    # The Gaussian blur is separable, and at 28x28 it is cheapest as two small matrix products
    # (blur down the columns, then along the rows); TensorFlow's depthwise convolution is ten
    # times slower on CPU.
    field = _gaussian_matrix(shape[1], sigma) @ noise @ tf.transpose(_gaussian_matrix(shape[2], sigma))
    peak = tf.reduce_max(tf.abs(field), axis=[1, 2, 3], keepdims=True)
    field = field * (strength / tf.maximum(peak, 1e-12))
    return tf.transpose(field, [0, 2, 3, 1])


def _gaussian_matrix(size, sigma: float):
    """(size, size): row i holds the Gaussian weights that blur position i; weights that would fall
    outside the image are dropped, as with zero padding. Unnormalised: the field is rescaled to
    its peak afterwards."""
    positions = tf.range(size, dtype=tf.float32)
    return tf.exp(-0.5 * tf.square((positions[:, None] - positions[None, :]) / sigma))


def resample(images, transforms, field, fill_mode: str):
    """Read every output pixel from input position affine(pixel + displacement), bilinearly: the
    four neighbours of every source position gathered from the flattened batch in one gather_nd (a
    per-image `map_coordinates` under `vectorized_map` took twice as long). Outside the image
    reads zero ("constant") or the mirror image ("reflect", d c b a | a b c d), exactly as
    TensorFlow's own projective transform kernel does for the affine part alone."""
    shape = tf.shape(images)
    count, height, width, channels = shape[0], shape[1], shape[2], shape[3]
    rows, cols = tf.meshgrid(tf.range(height, dtype=tf.float32), tf.range(width, dtype=tf.float32),
                             indexing="ij")
    y = rows[None] + field[..., 0]
    x = cols[None] + field[..., 1]
    a = [tf.reshape(transforms[:, i], [-1, 1, 1]) for i in range(6)]  # per image, broadcast over pixels
    source_x = a[0] * x + a[1] * y + a[2]
    source_y = a[3] * x + a[4] * y + a[5]
    left, top = tf.floor(source_x), tf.floor(source_y)
    right_weight = (source_x - left)[..., None]
    bottom_weight = (source_y - top)[..., None]
    left, top = tf.cast(left, tf.int32), tf.cast(top, tf.int32)
    if fill_mode == "constant":
        # A one-pixel border of zeros around every image: a neighbour outside the image is clipped
        # onto the border and reads zero, with no mask to compute and multiply.
        images = tf.pad(images, [[0, 0], [1, 1], [1, 1], [0, 0]])
        height, width = height + 2, width + 2
        top_rows = tf.clip_by_value(top + 1, 0, height - 1), tf.clip_by_value(top + 2, 0, height - 1)
        left_cols = tf.clip_by_value(left + 1, 0, width - 1), tf.clip_by_value(left + 2, 0, width - 1)
    else:
        top_rows = _reflected(top, height), _reflected(top + 1, height)
        left_cols = _reflected(left, width), _reflected(left + 1, width)
    first_pixel = tf.reshape(tf.range(count) * height * width, [-1, 1, 1])   # of each image
    index = tf.stack([first_pixel + row * width + col for row in top_rows for col in left_cols])
    # gather_nd takes about half the time of gather for one-pixel slices on CPU.
    upper_left, upper_right, lower_left, lower_right = tf.unstack(
        tf.gather_nd(tf.reshape(images, [-1, channels]), index[..., None]))
    upper = upper_left * (1 - right_weight) + upper_right * right_weight
    lower = lower_left * (1 - right_weight) + lower_right * right_weight
    return upper * (1 - bottom_weight) + lower * bottom_weight


def _reflected(index, size):
    """Indices outside 0..size-1 mirrored back inside, the edge pixel repeated (d c b a | a b c d)."""
    period = 2 * size
    index = tf.math.floormod(index, period)
    return tf.where(index < size, index, period - 1 - index)
