"""kerasml/conversion/conversion_fixes.py, fix by fix: each checked against TensorFlow or Keras itself."""

from __future__ import annotations

import numpy as np
import pytest

from kerasml.conversion import conversion_fixes as fixes


def test_grouped_convolution_leaves_no_function_call():
    import keras
    import tensorflow as tf

    model = keras.Sequential([keras.layers.Input((8, 8, 4)), keras.layers.Conv2D(4, 3, groups=2)])
    traced = tf.function(lambda x: model(x, training=False)).get_concrete_function(
        tf.TensorSpec((1, 8, 8, 4), tf.float32))
    plain = traced.graph.as_graph_def()
    assert any(node.op == "StatefulPartitionedCall" for node in plain.node)  # what coremltools meets
    prepared = fixes.inline_function_calls(traced)
    assert fixes.remaining_calls(prepared) == []
    assert any(node.op == "Conv2D" for node in prepared.node)


@pytest.mark.parametrize("size_in, size_out", [(12, 18), (12, 8), (7, 5), (5, 13), (4, 8)])
@pytest.mark.parametrize("align_corners", [False, True])
def test_nearest_sources_are_tensorflows(size_in, size_out, align_corners):
    import tensorflow as tf

    ramp = tf.reshape(tf.range(size_in, dtype=tf.float32), (1, size_in, 1, 1))
    if align_corners:
        picked = tf.compat.v1.image.resize_nearest_neighbor(ramp, (size_out, 1), align_corners=True)
    else:
        picked = tf.image.resize(ramp, (size_out, 1), method="nearest")  # half-pixel centres
    expected = picked.numpy().ravel().astype(np.int32)
    actual = fixes._nearest_sources(size_in, size_out, align_corners, half_pixel=not align_corners)
    np.testing.assert_array_equal(actual, expected)


def test_recurrent_layers_are_unrolled_with_the_same_weights_in_nested_models():
    import keras

    keras.utils.set_random_seed(0)
    inner = keras.Sequential([keras.layers.Input((6, 5)), keras.layers.Bidirectional(keras.layers.GRU(3)),
                              keras.layers.Dense(4)])
    image = keras.layers.Input((6, 5))
    outputs = keras.layers.Dense(2)(keras.layers.Concatenate()([inner(image), keras.layers.LSTM(3)(image)]))
    model = keras.Model(image, outputs)
    rebuilt = fixes.rebuild_for_conversion(model)
    layers = list(rebuilt._flatten_layers(include_self=False))
    assert not any(fixes._needs_unrolling(layer) for layer in layers)
    assert sum(isinstance(layer, keras.layers.RNN) for layer in layers) == 3  # GRU forward/backward, LSTM
    x = np.random.default_rng(0).normal(size=(3, 6, 5)).astype(np.float32)
    np.testing.assert_allclose(rebuilt(x), model(x), atol=1e-6)
    plain = keras.Sequential([keras.layers.Input((4,)), keras.layers.Dense(2)])
    assert fixes.rebuild_for_conversion(plain) is plain
