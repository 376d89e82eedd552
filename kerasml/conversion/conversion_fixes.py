"""What coremltools 9's TensorFlow frontend needs to convert every Keras image layer, in one list.

Three kinds of fix, each one function that says which Keras layer needs it and why:

- graph preparation: `inline_function_calls` freezes the traced model and inlines the nested
  function calls Keras leaves in the graph (coremltools has no converter for the call ops);
- TensorFlow ops coremltools lacks, registered with its own extension API (`register_tf_op`,
  composite MIL ops built with `mb.*`): see `register_missing_tf_ops`;
- Keras layers rebuilt in an equivalent form that converts, with the same weights:
  see `rebuild_for_conversion`.

`explain_failure` turns a refusal into one line: the layer, and `--format mlpackage` when only the
NeuralNetwork format cannot express it.
`convert.py` applies all of this; nothing here is a converter of its own.
"""

from __future__ import annotations

import functools

from kerasml.libs import coremltools, tensorflow

# ---------------------------------------------------------------------------------------------
# Graph preparation

# Function-call attributes that stop TensorFlow's inliner. Keras 3 runs grouped convolutions
# (Conv2D(groups>1), ConvNeXt's depthwise 7x7) in a nested `jit_compile=True` function, which
# TensorFlow marks "must compile with XLA, never inline"; Core ML needs the plain Conv2D inside.
_NOINLINE_ATTRIBUTES = ("_noinline", "_XlaMustCompile")


def inline_function_calls(concrete_function):
    """A frozen GraphDef of `concrete_function` with no `(Stateful)PartitionedCall` left.

    Needed by: Conv2D(groups>1) and ConvNeXt* (nested XLA function), and anything else Keras
    wraps in a nested tf.function. Freezes variables into constants, clears the attributes that
    forbid inlining, then runs TensorFlow's own grappler function inliner and constant folding.
    """
    tf = tensorflow()
    from tensorflow.lite.python.util import get_grappler_config, run_graph_optimizations
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    frozen = convert_variables_to_constants_v2(concrete_function, lower_control_flow=False,
                                               aggressive_inlining=True)
    graph_def = frozen.graph.as_graph_def(add_shapes=True)
    for function in graph_def.library.function:
        for key in _NOINLINE_ATTRIBUTES:
            if key in function.attr:
                del function.attr[key]
    for node in graph_def.node:
        for key in _NOINLINE_ATTRIBUTES:
            if key in node.attr:
                del node.attr[key]
    inputs = [t for t in frozen.inputs if t.dtype != tf.resource]
    with frozen.graph.as_default():
        optimised = run_graph_optimizations(
            graph_def, inputs, frozen.outputs,
            config=get_grappler_config(["function", "constfold", "dependency", "debug_stripper"]),
            graph=frozen.graph)
    return optimised


def remaining_calls(graph_def) -> list[str]:
    """Call ops still in the graph (the prepared graph should have none)."""
    return [node.name for node in graph_def.node if node.op in ("PartitionedCall", "StatefulPartitionedCall")]


# ---------------------------------------------------------------------------------------------
# TensorFlow ops coremltools 9 has no converter for

@functools.cache
def register_missing_tf_ops() -> None:
    """Registers, once per process, a converter for each TF op below with coremltools' registry."""
    coremltools()
    from coremltools.converters.mil.frontend.tensorflow.tf_op_registry import _TF_OPS_REGISTRY, register_tf_op
    from coremltools.converters.mil.mil import Builder as mb

    def missing(name):
        """Register only what coremltools lacks, so a later coremltools that adds it wins."""
        def decorate(func):
            if name not in _TF_OPS_REGISTRY:
                func.__name__ = name
                register_tf_op(func)
            return func
        return decorate

    @missing("Erfc")
    def erfc(context, node):
        # Keras 3 `activation="gelu"` (exact) is 0.5·x·erfc(-x/√2); erfc(x) = 1 - erf(x).
        x = context[node.inputs[0]]
        context.add(node.name, mb.sub(x=1.0, y=mb.erf(x=x), name=node.name))

    @missing("ResizeArea")
    def resize_area(context, node):
        # Keras Resizing(interpolation="area") by a whole factor: shrinking averages each block
        # (average pooling), enlarging repeats each pixel (nearest-neighbour upsampling).
        x = context[node.inputs[0]]
        size = context[node.inputs[1]].val
        height, width = x.shape[1], x.shape[2]
        if size is None or node.attr.get("align_corners"):
            raise NotImplementedError("area resizing needs a fixed output size and no align_corners")
        out_h, out_w = int(size[0]), int(size[1])
        channels_first = mb.transpose(x=x, perm=[0, 3, 1, 2])
        if height % out_h == 0 and width % out_w == 0:
            kernel = [height // out_h, width // out_w]
            y = mb.avg_pool(x=channels_first, kernel_sizes=kernel, strides=kernel, pad_type="valid")
        elif out_h % height == 0 and out_w % width == 0:
            y = mb.upsample_nearest_neighbor(x=channels_first, scale_factor_height=out_h // height,
                                             scale_factor_width=out_w // width)
        else:
            raise NotImplementedError(f"area resizing from {height}x{width} to {out_h}x{out_w} is not "
                                      "by a whole factor; Core ML has no area resampling")
        context.add(node.name, mb.transpose(x=y, perm=[0, 2, 3, 1], name=node.name))

    original_nearest = _TF_OPS_REGISTRY.get("ResizeNearestNeighbor")

    @functools.wraps(original_nearest)
    def resize_nearest_neighbor(context, node):
        # Keras Resizing(interpolation="nearest") by a fractional factor (12 → 18 rows): Core ML's
        # nearest resampling is specified for whole factors only, so TensorFlow's rounding
        # (half-pixel centres, or align_corners) is spelt out as a gather of the source rows and
        # columns, which both formats compute exactly. Whole factors keep coremltools' upsample.
        x = context[node.inputs[0]]
        size = context[node.inputs[1]].val
        height, width = x.shape[1], x.shape[2]
        align = bool(node.attr.get("align_corners", False))
        if size is None or (not align and size[0] % height == 0 and size[1] % width == 0):
            return original_nearest(context, node)
        rows = _nearest_sources(height, int(size[0]), align, bool(node.attr.get("half_pixel_centers")))
        columns = _nearest_sources(width, int(size[1]), align, bool(node.attr.get("half_pixel_centers")))
        y = mb.gather(x=x, indices=rows, axis=1)
        context.add(node.name, mb.gather(x=y, indices=columns, axis=2, name=node.name))

    register_tf_op(resize_nearest_neighbor, override=True)


def _nearest_sources(size_in: int, size_out: int, align_corners: bool, half_pixel: bool):
    """The source index of every output pixel, as TensorFlow's ResizeNearestNeighbor picks it."""
    import numpy as np

    # float32 arithmetic and round-half-up, as TensorFlow's kernel computes them
    out = np.arange(size_out, dtype=np.float32)
    if align_corners:
        scale = np.float32(size_in - 1) / np.float32(size_out - 1) if size_out > 1 else np.float32(0)
        source = np.floor(out * scale + np.float32(0.5))
    elif half_pixel:
        source = np.floor((out + np.float32(0.5)) * (np.float32(size_in) / np.float32(size_out)))
    else:
        source = np.floor(out * (np.float32(size_in) / np.float32(size_out)))
    return np.minimum(source, size_in - 1).astype(np.int32)


# ---------------------------------------------------------------------------------------------
# Keras layers rebuilt in an equivalent form that converts

# Recurrent layers traced as a `tf.while_loop` over the time steps make coremltools' TF frontend
# fail ("list index out of range"); over the fixed number of steps an image has, Keras' own
# `unroll=True` computes the same cells step by step with plain ops that convert.

def _needs_unrolling(layer) -> bool:
    """Any Keras RNN (LSTM, GRU, SimpleRNN, ConvLSTM*, RNN(cell)) or Bidirectional not unrolled."""
    import keras

    if isinstance(layer, keras.layers.Bidirectional):
        return not (layer.forward_layer.unroll and layer.backward_layer.unroll)
    return isinstance(layer, keras.layers.RNN) and not layer.unroll


def _unrolled(layer):
    """A new, unbuilt copy of a recurrent or Bidirectional layer with `unroll=True`."""
    import keras

    config = layer.get_config()
    if isinstance(layer, keras.layers.Bidirectional):
        for key in ("layer", "backward_layer"):
            if config.get(key):
                config[key] = {**config[key], "config": {**config[key]["config"], "unroll": True}}
        return keras.layers.Bidirectional.from_config(config)
    return layer.__class__.from_config({**config, "unroll": True})


def rebuild_for_conversion(keras_model):
    """The model with every layer that has a convertible equivalent rebuilt that way (same
    weights), or the model itself when nothing needs it.

    Needed by: LSTM, GRU, SimpleRNN, ConvLSTM*, Bidirectional(...) — unrolled over their fixed
    steps, in nested models too.
    """
    import keras

    if not any(_needs_unrolling(layer) for layer in keras_model._flatten_layers(include_self=False)):
        return keras_model

    def clone(layer):
        return _unrolled(layer) if _needs_unrolling(layer) else layer.__class__.from_config(layer.get_config())

    rebuilt = keras.models.clone_model(keras_model, clone_function=clone, recursive=True)
    rebuilt.set_weights(keras_model.get_weights())
    return rebuilt


def rebuilt_function(model):
    """The function to trace for `model` (a LoadedModel): its Keras model rebuilt where needed."""
    if model.keras_model is None or not hasattr(model.keras_model, "_flatten_layers"):
        return model.function
    rebuilt = rebuild_for_conversion(model.keras_model)
    if rebuilt is model.keras_model:
        return model.function
    return lambda x: rebuilt(x, training=False)


# ---------------------------------------------------------------------------------------------
# When coremltools still refuses

def explain_failure(error: Exception, graph_def, fmt: str, source, ml_program_converts) -> str:
    """One line for a conversion coremltools refused: which layer, which format can take it, what to do.

    When a NeuralNetwork conversion fails but the same graph converts to an ML Program, the limit
    is the format's (ops only ML Programs have, such as `affine`), and the line names
    `--format mlpackage`. Otherwise it names the layer and what to use instead.
    """
    import re

    reason = " ".join(str(error).split())[:200] or type(error).__name__
    missing = re.search(r"TF op '(\w+)' not implemented", reason)
    layer = _layer_of(graph_def, missing.group(1)) if missing else None
    where = f" in layer '{layer}'" if layer else ""
    if fmt == "mlmodel" and ml_program_converts():
        return (f"the NeuralNetwork format (.mlmodel) cannot express {source}{where}: {reason}; "
                "convert with --format mlpackage (ML Program, iOS 15+), which can")
    if missing:
        instead = _WAYS_OUT.get(missing.group(1), "replace that layer with built-in Keras layers that "
                                                   "convert (see the README's conversion table)")
        return (f"Core ML cannot express TensorFlow op '{missing.group(1)}'{where} of {source} in "
                f"either format; {instead}")
    return (f"coremltools could not convert {source}{where}: {reason}; replace the layer it names "
            "with built-in Keras layers that convert (see the README's conversion table)")


# What to use instead, for ops neither Core ML format has.
_WAYS_OUT = {
    "ResizeBicubic": "use Resizing/UpSampling2D with interpolation='bilinear' or 'nearest'",
    "ResizeArea": "use interpolation='bilinear', or AveragePooling2D when the size divides evenly",
    "ScaleAndTranslate": "use interpolation='bilinear' or 'nearest' (lanczos, gaussian and "
                         "mitchellcubic resizing have no Core ML equivalent)",
}


def _layer_of(graph_def, op_type: str) -> str | None:
    """The Keras layer a TF op came from, read off its node name (model/layer/op)."""
    for node in graph_def.node:
        if node.op == op_type:
            parts = [p for p in node.name.split("/") if p not in ("StatefulPartitionedCall", "")]
            return "/".join(parts[:2]) if len(parts) > 1 else node.name
    return None
