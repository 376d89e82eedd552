"""ML Program ops lowered to Core AI, one op per program, run by Apple's runtime (coreai-core) and
compared with kerasml's runtime on the same program and the same batch of predictions.

Each case builds a small program with coremltools' MIL builder (no graph passes, so the op stays as
written), lowers its main function with `lower_program` (inputs need not be images here), runs the
Core AI function on a batch of N inputs and compares every output with `kerasml.runtime`. Then the
compressed weights (`constexpr_*`): each one feeding a convolution or a linear layer, checked the
same way, and checked to stay compressed in the saved `.aimodel`.
"""

from __future__ import annotations

import asyncio
import re
import inspect
from pathlib import Path
from typing import Annotated
from unittest import mock

import numpy as np
import pytest

ct = pytest.importorskip("coremltools")
pytest.importorskip("coreai.authoring")

from coremltools.converters.mil import Builder as mb  # noqa: E402
from coremltools.converters.mil.mil import types  # noqa: E402

from kerasml.libs import coreai_authoring, coreai_runtime, coreai_notes_muted  # noqa: E402
from kerasml.coreai.lowering.graph import FOLDED, STACKED, Graph, Tensor  # noqa: E402
from kerasml.coreai.lowering.mil import lower_program, program_inputs  # noqa: E402
from kerasml.coreai.lowering.mil.program import _main  # noqa: E402
from kerasml.runtime import UnsupportedModelError, load_model  # noqa: E402

N = 3            # predictions per batch
RNG = np.random.default_rng(7)
IOS17, IOS18 = ct.target.iOS17, ct.target.iOS18


def rand(*shape, scale=1.0) -> np.ndarray:
    return (RNG.standard_normal(shape) * scale).astype(np.float32)


# -- the harness ----------------------------------------------------------------------------------

def convert(build, shapes, target=IOS17, dtypes=None):
    """An ML Program of one function `build(*inputs)` over float inputs of the given shapes."""
    dtypes = dtypes or [types.fp32] * len(shapes)
    specs = [mb.TensorSpec(shape=s, dtype=d) for s, d in zip(shapes, dtypes)]

    names = [f"x{i}" for i in range(len(shapes))]
    scope = {"build": build}   # the builder reads the function's own argument names
    exec(f"def program({', '.join(names)}):\n    return build({', '.join(names)})", scope)
    program = mb.program(input_specs=specs, opset_version=target)(scope["program"])
    with mock.patch("gc.collect", lambda *args: 0):   # ct.convert collects garbage: 0.25 s a call
        return ct.convert(program, convert_to="mlprogram", minimum_deployment_target=target,
                          compute_precision=ct.precision.FLOAT32, pass_pipeline=ct.PassPipeline.EMPTY,
                          skip_model_load=True)


def lower_function(mlmodel):
    """The program's main function as a Core AI module `main`, each input with an open prediction
    axis (folded into a leading axis of size 1, else stacked before it); outputs as (N, values) rows."""
    A = coreai_authoring()
    spec = mlmodel.get_spec()
    folder = Path(mlmodel.weights_dir).parent if getattr(mlmodel, "weights_dir", None) else None
    inputs = program_inputs(spec)
    function = _main(spec)
    outputs = list(function.block_specializations[function.opset].outputs)
    graph = Graph()

    def body(*values):
        bound = {}
        for spec_in, value in zip(inputs, values):
            folded = bool(spec_in.shape) and spec_in.shape[0] == 1
            bound[spec_in.name] = Tensor(value, spec_in.shape, spec_in.dtype, FOLDED if folded else STACKED)
        lowered = lower_program(spec, folder, graph, bound)
        rows = []
        for name in outputs:
            t = lowered.values[name]
            if not isinstance(t, Tensor) or not t.batched:
                raise UnsupportedModelError(f"output {name} does not depend on the inputs")
            rows.append(graph.rows(t))
        return rows[0] if len(rows) == 1 else tuple(rows)

    def core_shape(i):
        return (-1, *i.shape[1:]) if i.shape and i.shape[0] == 1 else (-1, *i.shape)

    params = [inspect.Parameter(i.name, inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=Annotated[
        A.Value, A.TensorSpec(core_shape(i), i.dtype.type, name=i.name)]) for i in inputs]
    specs = [Annotated[A.Value, A.TensorSpec((-1, -1), np.float32, name=f"out{k}")] for k in range(len(outputs))]
    returns = specs[0] if len(specs) == 1 else tuple[tuple(specs)]

    def main(*values):
        return body(*values)

    main.__signature__ = inspect.Signature(params, return_annotation=returns)
    main.__annotations__ = {**{p.name: p.annotation for p in params}, "return": returns}
    module = A.Module.create()
    with module:
        A.graph(main)
    return module, [i.name for i in inputs], outputs, graph.notes


def run_core_ai(module, feeds: dict, n_outputs: int, path) -> list[np.ndarray]:
    A, R = coreai_authoring(), coreai_runtime()
    A.AIProgram(module).save_asset(path)

    async def go():
        async with A.AIModelAsset.load(path).executable() as model:
            fn = model.load_function("main")
            out = await fn({k: R.NDArray(np.ascontiguousarray(v)) for k, v in feeds.items()})
            return [out[f"out{k}"].numpy() for k in range(n_outputs)]

    with coreai_notes_muted():
        return asyncio.run(go())


def batch_for(shape, scale=1.0) -> np.ndarray:
    """N inputs of one program input's shape: a leading 1 holds the predictions, else a new axis does."""
    if shape and shape[0] == 1:
        return rand(N, *shape[1:], scale=scale)
    return rand(N, *shape, scale=scale)


def check(build, shapes, tmp_path, target=IOS17, atol=1e-4, rtol=1e-4, feeds=None, scale=1.0, dtypes=None):
    """Lower `build` as a program, run both runtimes on the same batch, compare every output."""
    mlmodel = convert(build, shapes, target, dtypes)
    module, names, outputs, notes = lower_function(mlmodel)
    feeds = feeds or {}
    feeds = {name: feeds.get(name, batch_for(shape, scale)) for name, shape in zip(names, shapes)}
    got = run_core_ai(module, feeds, len(outputs), tmp_path / "op.aimodel")
    want = load_model(mlmodel).predict({k: v.astype(np.float32) for k, v in feeds.items()})
    for name, g in zip(outputs, got):
        w = np.asarray(want[name], np.float32).reshape(len(g), -1)
        np.testing.assert_allclose(g, w, atol=atol, rtol=rtol, err_msg=f"output {name}")
    return notes


# -- activations and unary ops --------------------------------------------------------------------

X4 = (1, 3, 5, 6)

UNARY = {
    "relu": lambda x: mb.relu(x=x),
    "relu6": lambda x: mb.relu6(x=x),
    "sigmoid": lambda x: mb.sigmoid(x=x),
    "tanh": lambda x: mb.tanh(x=x),
    "silu": lambda x: mb.silu(x=x),
    "gelu_exact": lambda x: mb.gelu(x=x, mode="EXACT"),
    "gelu_tanh": lambda x: mb.gelu(x=x, mode="TANH_APPROXIMATION"),
    "gelu_sigmoid": lambda x: mb.gelu(x=x, mode="SIGMOID_APPROXIMATION"),
    "elu": lambda x: mb.elu(x=x, alpha=0.7),
    "leaky_relu": lambda x: mb.leaky_relu(x=x, alpha=0.2),
    "prelu": lambda x: mb.prelu(x=x, alpha=np.array([0.1, 0.2, 0.3], np.float32)),
    "softplus": lambda x: mb.softplus(x=x),
    "softplus_parametric": lambda x: mb.softplus_parametric(
        x=x, alpha=np.array([0.5, 1, 2], np.float32), beta=np.array([1, 2, 0.5], np.float32)),
    "softsign": lambda x: mb.softsign(x=x),
    "clamped_relu": lambda x: mb.clamped_relu(x=x, alpha=0.1, beta=1.5),
    "thresholded_relu": lambda x: mb.thresholded_relu(x=x, alpha=0.5),
    "sigmoid_hard": lambda x: mb.sigmoid_hard(x=x, alpha=0.3, beta=0.4),
    "scaled_tanh": lambda x: mb.scaled_tanh(x=x, alpha=1.5, beta=0.7),
    "linear_activation": lambda x: mb.linear_activation(x=x, alpha=2.0, beta=-1.0),
    "clip": lambda x: mb.clip(x=x, alpha=-0.5, beta=0.8),
    "softmax_channels": lambda x: mb.softmax(x=x, axis=1),
    "softmax_last": lambda x: mb.softmax(x=x, axis=-1),
    "softmax_predictions": lambda x: mb.softmax(x=x, axis=0),
    "abs": lambda x: mb.abs(x=x),
    "exp": lambda x: mb.exp(x=x),
    "exp2": lambda x: mb.exp2(x=x),
    "square": lambda x: mb.square(x=x),
    "sqrt_abs": lambda x: mb.sqrt(x=mb.abs(x=x)),
    "rsqrt_abs": lambda x: mb.rsqrt(x=mb.abs(x=x), epsilon=0.1),
    "log_abs": lambda x: mb.log(x=mb.abs(x=x), epsilon=0.01),
    "inverse": lambda x: mb.inverse(x=x, epsilon=0.5),
    "floor": lambda x: mb.floor(x=x),
    "ceil": lambda x: mb.ceil(x=x),
    "round": lambda x: mb.round(x=x),
    "sign": lambda x: mb.sign(x=x),
    "erf": lambda x: mb.erf(x=x),
    "sin": lambda x: mb.sin(x=x),
    "cos": lambda x: mb.cos(x=x),
    "tan": lambda x: mb.tan(x=mb.mul(x=x, y=0.3)),
    "asin": lambda x: mb.asin(x=mb.tanh(x=x)),
    "acos": lambda x: mb.acos(x=mb.tanh(x=x)),
    "atan": lambda x: mb.atan(x=x),
    "sinh": lambda x: mb.sinh(x=x),
    "cosh": lambda x: mb.cosh(x=x),
    "atanh": lambda x: mb.atanh(x=mb.mul(x=mb.tanh(x=x), y=0.9)),
    "threshold": lambda x: mb.threshold(x=x, alpha=0.25),
    "identity": lambda x: mb.identity(x=mb.relu(x=x)),
    "cast_fp16_and_back": lambda x: mb.cast(x=mb.cast(x=x, dtype="fp16"), dtype="fp32"),
    "cast_int32": lambda x: mb.cast(x=mb.mul(x=x, y=3.0), dtype="int32"),
    "cast_bool": lambda x: mb.cast(x=mb.cast(x=mb.round(x=x), dtype="bool"), dtype="fp32"),
    "logical_not": lambda x: mb.cast(x=mb.logical_not(x=mb.greater(x=x, y=0.0)), dtype="fp32"),
}


@pytest.mark.parametrize("name", list(UNARY))
def test_unary_op(name, tmp_path):
    check(UNARY[name], [X4], tmp_path, scale=2.0, atol=2e-4)


# -- elementwise binary ops, comparisons, select ----------------------------------------------------

BINARY = ["add", "sub", "mul", "real_div", "maximum", "minimum", "pow", "floor_div", "mod",
          "equal", "not_equal", "greater", "greater_equal", "less", "less_equal"]
LOGICAL = ["logical_and", "logical_or", "logical_xor"]


def _binary(kind, x, y):
    if kind == "pow":
        x = mb.abs(x=x) if not isinstance(x, np.ndarray) else np.abs(x)
    if kind in ("floor_div", "mod", "real_div"):
        y = mb.add(x=mb.abs(x=y), y=0.5) if not isinstance(y, np.ndarray) else np.abs(y) + 0.5
    out = getattr(mb, kind)(x=x, y=y)
    return mb.cast(x=out, dtype="fp32") if out.dtype == types.bool else out


@pytest.mark.parametrize("kind", BINARY)
@pytest.mark.parametrize("form", ["const_row", "const_full", "two_inputs", "const_first", "rank3_vs_rank4"])
def test_binary_op(kind, form, tmp_path):
    if form == "const_row":
        check(lambda x: _binary(kind, x, np.round(rand(6, scale=2), 1)), [X4], tmp_path, scale=2)
    elif form == "const_full":
        check(lambda x: _binary(kind, x, np.round(rand(1, 3, 5, 6, scale=2), 1)), [X4], tmp_path, scale=2)
    elif form == "two_inputs":
        check(lambda x, y: _binary(kind, x, y), [X4, (1, 3, 1, 6)], tmp_path, scale=2)
    elif form == "const_first":
        c = np.round(rand(3, 1, 1, scale=2), 1)
        if kind == "pow":
            c = np.abs(c)
        positive = kind in ("floor_div", "mod", "real_div", "pow")
        check(lambda x: getattr(mb, kind)(x=c, y=mb.add(x=mb.abs(x=x), y=0.5)) if positive else _binary(kind, c, x),
              [X4], tmp_path, scale=2)
    else:   # a rank-3 value against a rank-4 one: the prediction axis is not the program's batch axis
        check(lambda x, y: _binary(kind, x, y), [(3, 5, 6), X4], tmp_path, scale=2)


@pytest.mark.parametrize("kind", LOGICAL)
def test_logical_op(kind, tmp_path):
    check(lambda x, y: mb.cast(x=getattr(mb, kind)(x=mb.greater(x=x, y=0.0), y=mb.greater(x=y, y=0.3)),
                               dtype="fp32"), [X4, X4], tmp_path)


@pytest.mark.parametrize("form", ["computed_cond", "const_branch", "const_cond"])
def test_select(form, tmp_path):
    if form == "computed_cond":
        check(lambda x, y: mb.select(cond=mb.greater(x=x, y=y), a=x, b=mb.mul(x=y, y=2.0)), [X4, X4], tmp_path)
    elif form == "const_branch":
        check(lambda x: mb.select(cond=mb.less(x=x, y=0.0), a=rand(1, 3, 1, 6), b=x), [X4], tmp_path)
    else:
        cond = RNG.random((5, 6)) > 0.5
        check(lambda x: mb.select(cond=cond, a=x, b=mb.exp(x=x)), [X4], tmp_path)


# -- convolution and pooling ----------------------------------------------------------------------

X_IMG = (1, 4, 9, 8)

CONV = {
    "valid": dict(pad_type="valid"),
    "same_stride2": dict(pad_type="same", strides=[2, 2]),
    "same_lower_stride2": dict(pad_type="same_lower", strides=[2, 2]),
    "custom": dict(pad_type="custom", pad=[1, 0, 2, 1]),
    "dilated": dict(pad_type="same", dilations=[2, 1]),
    "groups": dict(pad_type="valid", groups=2, out=6),
    "depthwise": dict(pad_type="same", groups=4, out=8),
    "bias_stride": dict(pad_type="valid", strides=[2, 3], bias=True),
}


@pytest.mark.parametrize("name", list(CONV))
def test_conv2d(name, tmp_path):
    opts = dict(CONV[name])
    out, groups, bias = opts.pop("out", 6), opts.get("groups", 1), opts.pop("bias", False)
    w = rand(out, 4 // groups, 3, 3)
    extra = {"bias": rand(out)} if bias else {}
    check(lambda x: mb.conv(x=x, weight=w, **opts, **extra), [X_IMG], tmp_path)


@pytest.mark.parametrize("pad_type", ["valid", "same", "same_lower", "custom"])
def test_conv1d(pad_type, tmp_path):
    w = rand(5, 4, 3)
    extra = {"pad": [2, 1]} if pad_type == "custom" else {}
    check(lambda x: mb.conv(x=x, weight=w, bias=rand(5), strides=[2], pad_type=pad_type, **extra),
          [(1, 4, 11)], tmp_path)


def test_conv_on_stacked_input(tmp_path):
    """A program batch of 2 per prediction: the prediction axis merges into the convolution's batch."""
    w = rand(3, 4, 3, 3)
    check(lambda x: mb.conv(x=x, weight=w, pad_type="same"), [(2, 4, 6, 6)], tmp_path)


CONV_T = {
    "valid_stride2": dict(pad_type="valid", strides=[2, 2]),
    "same_stride2": dict(pad_type="same", strides=[2, 2]),
    "custom": dict(pad_type="custom", pad=[1, 0, 0, 1], strides=[2, 1]),
    "output_shape": dict(pad_type="same", strides=[2, 2], output_shape=[1, 6, 18, 16]),
    "groups_dilated": dict(pad_type="valid", groups=2, dilations=[2, 1]),
    "bias": dict(pad_type="valid", strides=[3, 2], bias=True),
}


@pytest.mark.parametrize("name", list(CONV_T))
def test_conv_transpose2d(name, tmp_path):
    opts = dict(CONV_T[name])
    groups, bias = opts.get("groups", 1), opts.pop("bias", False)
    w = rand(4, 6 // groups, 3, 3)
    extra = {"bias": rand(6)} if bias else {}
    check(lambda x: mb.conv_transpose(x=x, weight=w, **opts, **extra), [X_IMG], tmp_path)


def test_conv_transpose1d(tmp_path):
    w = rand(4, 3, 4)
    check(lambda x: mb.conv_transpose(x=x, weight=w, strides=[2], pad_type="valid"), [(1, 4, 7)], tmp_path)


POOLS = {
    "valid": dict(pad_type="valid"),
    "same": dict(pad_type="same", strides=[2, 2]),
    "same_lower": dict(pad_type="same_lower", strides=[2, 2]),
    "custom": dict(pad_type="custom", pad=[1, 1, 0, 1], strides=[2, 2]),
    "ceil_mode": dict(pad_type="valid", strides=[2, 2], ceil_mode=True),
    "custom_ceil": dict(pad_type="custom", pad=[1, 1, 1, 1], strides=[2, 3], ceil_mode=True),
}


@pytest.mark.parametrize("kind", ["max_pool", "avg_pool", "l2_pool"])
@pytest.mark.parametrize("name", list(POOLS))
def test_pool2d(kind, name, tmp_path):
    opts = dict(POOLS[name])
    if kind == "l2_pool":
        opts.pop("ceil_mode", None)
    check(lambda x: getattr(mb, kind)(x=x, kernel_sizes=[3, 3], strides=opts.pop("strides", [1, 1]), **opts),
          [X_IMG], tmp_path)


@pytest.mark.parametrize("exclude", [True, False])
@pytest.mark.parametrize("name", ["same", "custom", "ceil_mode"])
def test_avg_pool_padding_in_average(exclude, name, tmp_path):
    opts = dict(POOLS[name])
    check(lambda x: mb.avg_pool(x=x, kernel_sizes=[3, 2], strides=opts.pop("strides", [1, 1]),
                                exclude_padding_from_average=exclude, **opts), [X_IMG], tmp_path)


@pytest.mark.parametrize("kind", ["max_pool", "avg_pool", "l2_pool"])
def test_pool1d(kind, tmp_path):
    check(lambda x: getattr(mb, kind)(x=x, kernel_sizes=[3], strides=[2], pad_type="same"), [(1, 4, 11)], tmp_path)


# -- linear algebra -------------------------------------------------------------------------------

@pytest.mark.parametrize("shape", [(1, 12), (1, 5, 12), (12,), (2, 3, 12)])
def test_linear(shape, tmp_path):
    w, b = rand(7, 12), rand(7)
    check(lambda x: mb.linear(x=x, weight=w, bias=b), [shape], tmp_path)


MATMUL = {
    "const_y": ([(1, 5, 6)], lambda x: mb.matmul(x=x, y=rand(6, 4))),
    "const_y_transposed": ([(1, 5, 6)], lambda x: mb.matmul(x=x, y=rand(4, 6), transpose_y=True)),
    "const_x": ([(1, 5, 6)], lambda x: mb.matmul(x=rand(3, 5), y=x)),
    "transpose_x": ([(1, 6, 5)], lambda x: mb.matmul(x=x, y=rand(6, 4), transpose_x=True)),
    "two_inputs": ([(1, 5, 6), (1, 6, 3)], lambda x, y: mb.matmul(x=x, y=y)),
    "two_inputs_transposed": ([(1, 5, 6), (1, 3, 6)], lambda x, y: mb.matmul(x=x, y=y, transpose_y=True)),
    "broadcast_batch": ([(2, 5, 6), (1, 6, 3)], lambda x, y: mb.matmul(x=x, y=y)),
    "rank2": ([(1, 6)], lambda x: mb.matmul(x=x, y=rand(6, 4))),
    "rank4_const": ([(1, 2, 5, 6)], lambda x: mb.matmul(x=x, y=rand(2, 6, 3))),
}


@pytest.mark.parametrize("name", list(MATMUL))
def test_matmul(name, tmp_path):
    shapes, build = MATMUL[name]
    check(build, shapes, tmp_path)


EINSUM = {
    "nchw,nwhu->nchu": ([(1, 3, 4, 5), (1, 5, 4, 2)]),
    "chw,whu->chu": ([(3, 4, 5), (5, 4, 2)]),
}


ATTENTION = {
    "self": ([(1, 2, 5, 4)], lambda x: mb.scaled_dot_product_attention(query=x, key=x, value=mb.relu(x=x))),
    "cross_constant_kv": ([(1, 2, 5, 4)], lambda x: mb.scaled_dot_product_attention(
        query=x, key=rand(1, 2, 6, 4), value=rand(1, 2, 6, 3))),
    "float_mask": ([(1, 2, 5, 4), (1, 2, 6, 4)], lambda q, k: mb.scaled_dot_product_attention(
        query=q, key=k, value=k, attn_mask=rand(5, 6))),
    "bool_mask": ([(1, 5, 4)], lambda x: mb.scaled_dot_product_attention(
        query=x, key=x, value=x, attn_mask=np.tril(np.ones((5, 5), bool)))),
}


@pytest.mark.parametrize("name", list(ATTENTION))
def test_scaled_dot_product_attention(name, tmp_path):
    shapes, build = ATTENTION[name]
    check(build, shapes, tmp_path, target=IOS18)


@pytest.mark.parametrize("equation", list(EINSUM))
def test_einsum(equation, tmp_path):
    check(lambda x, y: mb.einsum(values=(x, y), equation=equation), EINSUM[equation], tmp_path)


# -- shape ops ------------------------------------------------------------------------------------

X3 = (1, 4, 6, 5)

SHAPE_OPS = {
    "reshape": ([X3], lambda x: mb.reshape(x=x, shape=[1, 8, 15])),
    "reshape_zero_minus_one": ([X3], lambda x: mb.reshape(x=x, shape=[0, -1, 5])),
    "reshape_to_stacked": ([X3], lambda x: mb.reshape(x=x, shape=[4, 30])),
    "reshape_stacked_to_folded": ([(2, 3, 4)], lambda x: mb.reshape(x=x, shape=[1, 24])),
    "squeeze": ([(1, 4, 1, 5)], lambda x: mb.squeeze(x=x, axes=[2])),
    "squeeze_all": ([(1, 4, 1, 5)], lambda x: mb.squeeze(x=x)),
    "expand_dims": ([X3], lambda x: mb.expand_dims(x=x, axes=[-1])),
    "expand_dims_front": ([(3, 4)], lambda x: mb.expand_dims(x=x, axes=[0, 2])),
    "flatten2d": ([X3], lambda x: mb.flatten2d(x=x, axis=2)),
    "transpose": ([X3], lambda x: mb.transpose(x=x, perm=[0, 2, 3, 1])),
    "transpose_batch_axis": ([X3], lambda x: mb.transpose(x=x, perm=[1, 0, 3, 2])),
    "transpose_stacked": ([(2, 3, 4)], lambda x: mb.transpose(x=x, perm=[2, 0, 1])),
    "slice_by_index": ([X3], lambda x: mb.slice_by_index(x=x, begin=[0, 1, 0, 1], end=[1, 4, 6, 5], stride=[1, 2, 2, 1])),
    "slice_negative_indices": ([X3], lambda x: mb.slice_by_index(x=x, begin=[0, -3, 1, -4], end=[1, -1, -1, 5])),
    "slice_negative_stride": ([X3], lambda x: mb.slice_by_index(x=x, begin=[0, 3, 5, 4], end=[1, 0, 0, 0],
                                                                stride=[1, -1, -2, -1])),
    "slice_masks": ([X3], lambda x: mb.slice_by_index(x=x, begin=[0, 2, 3, 1], end=[1, 3, 4, 4],
                                                      begin_mask=[True, False, True, False],
                                                      end_mask=[True, False, False, True])),
    "slice_negative_stride_masks": ([X3], lambda x: mb.slice_by_index(
        x=x, begin=[0, 0, 4, 0], end=[1, 0, 0, 0], stride=[1, -1, -1, -2],
        begin_mask=[False, True, False, True], end_mask=[False, True, True, True])),
    "slice_squeeze": ([X3], lambda x: mb.slice_by_index(x=x, begin=[0, 2, 0, 0], end=[1, 3, 6, 5],
                                                        squeeze_mask=[False, True, False, False])),
    "slice_prediction_axis_stacked": ([(3, 4, 5)], lambda x: mb.slice_by_index(x=x, begin=[1, 0, 0], end=[3, 4, 5])),
    "slice_by_size": ([X3], lambda x: mb.slice_by_size(x=x, begin=[0, 1, 2, 0], size=[1, 2, -1, 3])),
    "slice_by_size_negative": ([X3], lambda x: mb.slice_by_size(x=x, begin=[0, -3, 0, -2], size=[-1, 2, 4, 2])),
    "concat_channels": ([X3], lambda x: mb.concat(values=[x, mb.relu(x=x), rand(1, 2, 6, 5)], axis=1)),
    "concat_last": ([X3, X3], lambda x, y: mb.concat(values=[x, y], axis=-1)),
    "concat_axis0": ([X3], lambda x: mb.concat(values=[x, mb.exp(x=x)], axis=0)),
    "concat_interleave": ([X3, X3], lambda x, y: mb.concat(values=[x, y], axis=1, interleave=True)),
    "concat_interleave_const": ([X3], lambda x: mb.concat(values=[x, rand(1, 4, 6, 5)], axis=3, interleave=True)),
    "stack": ([X3, X3], lambda x, y: mb.stack(values=[x, y], axis=2)),
    "stack_front": ([X3, X3], lambda x, y: mb.stack(values=[x, y], axis=0)),
    "stack_const": ([X3], lambda x: mb.stack(values=[x, rand(1, 4, 6, 5)], axis=-1)),
    "split_num": ([X3], lambda x: mb.split(x=x, num_splits=2, axis=1)),
    "split_sizes": ([X3], lambda x: mb.split(x=x, split_sizes=[1, 3, 2], axis=2)),
    "split_axis0_stacked": ([(4, 3, 2)], lambda x: mb.split(x=x, num_splits=2, axis=0)),
    "tile": ([X3], lambda x: mb.tile(x=x, reps=[1, 2, 1, 3])),
    "tile_batch": ([X3], lambda x: mb.tile(x=x, reps=[2, 1, 1, 1])),
    "reverse": ([X3], lambda x: mb.reverse(x=x, axes=[1, 3])),
    "reverse_all": ([X3], lambda x: mb.reverse(x=x)),
    "depth_to_space": ([(1, 8, 3, 2)], lambda x: mb.depth_to_space(x=x, block_size=2)),
    "space_to_depth": ([(1, 2, 4, 6)], lambda x: mb.space_to_depth(x=x, block_size=2)),
    "pixel_shuffle": ([(1, 8, 3, 2)], lambda x: mb.pixel_shuffle(x=x, upscale_factor=2)),
    "pixel_unshuffle": ([(1, 2, 4, 6)], lambda x: mb.pixel_unshuffle(x=x, downscale_factor=np.uint32(2))),
}


def test_reshape_like(tmp_path):
    """iOS 16's reshape_like: x takes the shape of slices of other tensors' shapes."""
    check(lambda x, y: mb.reshape_like(x=x, ref_tensors=(y,), begins=(0,), ends=(3,), end_masks=(True,)),
          [(1, 4, 6), (1, 6, 4)], tmp_path, target=ct.target.iOS16)


@pytest.mark.parametrize("name", list(SHAPE_OPS))
def test_shape_op(name, tmp_path):
    shapes, build = SHAPE_OPS[name]
    check(build, shapes, tmp_path, target=IOS18 if name.startswith("pixel_unshuffle") else IOS17)


PADS = {
    "constant": dict(pad=[0, 0, 1, 2, 2, 0], mode="constant", constant_val=1.5),
    "constant_all_axes": dict(pad=[0, 0, 1, 0, 0, 1, 2, 1], mode="constant"),
    "reflect": dict(pad=[1, 2, 2, 1], mode="reflect"),
    "replicate": dict(pad=[2, 1, 0, 3], mode="replicate"),
    "constant_batch_axis": dict(pad=[1, 0, 0, 0, 0, 0, 0, 0], mode="constant"),
}


@pytest.mark.parametrize("name", list(PADS))
def test_pad(name, tmp_path):
    check(lambda x: mb.pad(x=x, **PADS[name]), [X3], tmp_path)


GATHER = {
    "axis1": dict(indices=np.array([2, 0, 3, 3], np.int32), axis=1),
    "negative_indices": dict(indices=np.array([-1, 0, -2], np.int32), axis=-1),
    "scalar_index": dict(indices=np.int32(1), axis=2),
    "2d_indices": dict(indices=np.array([[0, 1], [3, 2]], np.int32), axis=1),
    "axis0": dict(indices=np.array([0, 0], np.int32), axis=0),
}


@pytest.mark.parametrize("name", list(GATHER))
def test_gather(name, tmp_path):
    check(lambda x: mb.gather(x=x, **GATHER[name]), [X3], tmp_path)


def test_gather_along_axis(tmp_path):
    indices = RNG.integers(0, 6, (1, 4, 3, 5)).astype(np.int32)
    check(lambda x: mb.gather_along_axis(x=x, indices=indices, axis=2), [X3], tmp_path)


def test_gather_nd(tmp_path):
    indices = np.array([[0, 1, 2], [0, 3, 0]], np.int32)
    check(lambda x: mb.gather_nd(x=x, indices=indices), [X3], tmp_path)


# -- reductions -----------------------------------------------------------------------------------

REDUCTIONS = ["reduce_mean", "reduce_sum", "reduce_max", "reduce_min", "reduce_prod", "reduce_l1_norm",
              "reduce_l2_norm", "reduce_sum_square", "reduce_log_sum", "reduce_log_sum_exp"]


@pytest.mark.parametrize("kind", REDUCTIONS)
@pytest.mark.parametrize("axes,keep", [([2, 3], True), ([1], False), ([-1], False), (None, False), ([0, 2], True)])
def test_reduction(kind, axes, keep, tmp_path):
    def build(x):
        if kind == "reduce_log_sum":
            x = mb.abs(x=x)
        if kind == "reduce_prod":
            x = mb.add(x=mb.mul(x=x, y=0.1), y=1.0)
        return getattr(mb, kind)(x=x, axes=axes, keep_dims=keep)
    check(build, [X3], tmp_path, rtol=2e-4)


@pytest.mark.parametrize("kind", ["reduce_argmax", "reduce_argmin"])
@pytest.mark.parametrize("axis,keep", [(1, False), (-1, True), (2, False)])
def test_reduce_arg(kind, axis, keep, tmp_path):
    check(lambda x: getattr(mb, kind)(x=x, axis=axis, keep_dims=keep), [X3], tmp_path)


# -- normalisation --------------------------------------------------------------------------------

NORMS = {
    "batch_norm": ([X3], lambda x: mb.batch_norm(x=x, mean=rand(4), variance=np.abs(rand(4)) + 0.5,
                                                 gamma=rand(4), beta=rand(4), epsilon=1e-3)),
    "batch_norm_plain": ([X3], lambda x: mb.batch_norm(x=x, mean=rand(4), variance=np.abs(rand(4)) + 0.5)),
    "batch_norm_rank3": ([(1, 4, 7)], lambda x: mb.batch_norm(x=x, mean=rand(4), variance=np.abs(rand(4)) + 0.5)),
    "instance_norm": ([X3], lambda x: mb.instance_norm(x=x, gamma=rand(4), beta=rand(4), epsilon=1e-4)),
    "instance_norm_plain": ([X3], lambda x: mb.instance_norm(x=x)),
    "layer_norm_last": ([X3], lambda x: mb.layer_norm(x=x, axes=[-1], gamma=rand(5), beta=rand(5))),
    "layer_norm_chw": ([X3], lambda x: mb.layer_norm(x=x, axes=[1, 2, 3], epsilon=1e-3)),
    "layer_norm_channels": ([X3], lambda x: mb.layer_norm(x=x, axes=[1], gamma=rand(4), beta=rand(4))),
    "layer_norm_with_batch_axis": ([X3], lambda x: mb.layer_norm(x=x, axes=[0, 1])),
    "l2_norm": ([X3], lambda x: mb.l2_norm(x=x, epsilon=1e-5)),
    "l2_norm_rank3": ([(1, 3, 9)], lambda x: mb.l2_norm(x=x)),
    "l2_norm_stacked": ([(2, 3, 9)], lambda x: mb.l2_norm(x=x)),
    "l2_norm_rank5": ([(1, 2, 3, 4, 5)], lambda x: mb.l2_norm(x=x)),
    "local_response_norm": ([X3], lambda x: mb.local_response_norm(x=x, size=3, alpha=1e-2, beta=0.75, k=1.0)),
    "local_response_norm_even": ([(1, 6, 4, 3)], lambda x: mb.local_response_norm(x=x, size=4, alpha=0.1, beta=0.5, k=2.0)),
    "local_response_norm_rank3": ([(1, 5, 7)], lambda x: mb.local_response_norm(x=x, size=5)),
}


@pytest.mark.parametrize("name", list(NORMS))
def test_normalization(name, tmp_path):
    shapes, build = NORMS[name]
    check(build, shapes, tmp_path, scale=3.0)


# -- resizing -------------------------------------------------------------------------------------

X_SMALL = (1, 2, 5, 4)

RESIZES = {
    "upsample_nearest": lambda x: mb.upsample_nearest_neighbor(x=x, scale_factor_height=2, scale_factor_width=3),
    "upsample_nearest_fractional": lambda x: mb.upsample_nearest_neighbor(x=x, scale_factor_height=1.5,
                                                                          scale_factor_width=2.5),
    "resize_nearest": lambda x: mb.resize_nearest_neighbor(x=x, target_size_height=7, target_size_width=3),
    "upsample_bilinear_align": lambda x: mb.upsample_bilinear(x=x, scale_factor_height=2, scale_factor_width=2,
                                                              align_corners=True),
    "upsample_bilinear_half_pixel": lambda x: mb.upsample_bilinear(x=x, scale_factor_height=2.0, scale_factor_width=1.5,
                                                                   align_corners=False, half_pixel_centers=True),
    "upsample_bilinear_asymmetric": lambda x: mb.upsample_bilinear(x=x, scale_factor_height=3, scale_factor_width=2,
                                                                   align_corners=False, half_pixel_centers=False),
    "crop": lambda x: mb.crop(x=x, crop_height=[1, 2], crop_width=[0, 1]),
}
for _mode in ("STRICT_ALIGN_CORNERS", "ALIGN_CORNERS", "DEFAULT", "OFFSET_CORNERS", "UNALIGN_CORNERS"):
    RESIZES[f"resize_bilinear_{_mode}"] = (
        lambda x, m=_mode: mb.resize_bilinear(x=x, target_size_height=8, target_size_width=3, sampling_mode=m))


@pytest.mark.parametrize("name", list(RESIZES))
def test_resize(name, tmp_path):
    check(RESIZES[name], [X_SMALL], tmp_path)


CROP_RESIZES = {
    "ios17_boxes": ((2, 3, 7, 6), IOS17, dict(
        boxes=np.array([[0.5, 1, 4, 5], [1, 0, 6, 3], [-1, 2, 3, 8]], np.float32), box_indices=np.array([1, 0, 1], np.int32),
        target_height=4, target_width=3, normalized_coordinates=False, box_coordinate_mode="CORNERS_HEIGHT_FIRST",
        sampling_mode="STRICT_ALIGN_CORNERS", pad_value=0.5)),
    "ios17_normalized_center": ((1, 3, 7, 6), IOS17, dict(
        boxes=np.array([[0.5, 0.5, 0.6, 0.4]], np.float32), box_indices=np.array([0], np.int32), target_height=3,
        target_width=5, normalized_coordinates=True, box_coordinate_mode="CENTER_SIZE_HEIGHT_FIRST",
        sampling_mode="ALIGN_CORNERS")),
    "ios16_roi_with_index": ((1, 3, 7, 6), ct.target.iOS16, dict(
        roi=np.array([[0, 0, 0, 4, 5], [0, 1, 1, 6, 5]], np.float32).reshape(2, 1, 5, 1, 1), target_height=3,
        target_width=2, box_coordinate_mode="CORNERS_WIDTH_FIRST", sampling_mode="OFFSET_CORNERS")),
    "ios16_roi_every_image": ((2, 3, 7, 6), ct.target.iOS16, dict(
        roi=np.array([[0, 0, 4, 5]], np.float32).reshape(1, 1, 4, 1, 1), target_height=2, target_width=2,
        sampling_mode="DEFAULT", spatial_scale=0.5)),
}


@pytest.mark.parametrize("name", list(CROP_RESIZES))
def test_crop_resize(name, tmp_path):
    shape, target, opts = CROP_RESIZES[name]
    check(lambda x: mb.crop_resize(x=x, **opts), [shape], tmp_path, target=target)


@pytest.mark.parametrize("mode,sampling", [("LINEAR", "DEFAULT"), ("LINEAR", "STRICT_ALIGN_CORNERS"),
                                           ("LINEAR", "UNALIGN_CORNERS"), ("LINEAR", "ALIGN_CORNERS"),
                                           ("LINEAR", "OFFSET_CORNERS"), ("NEAREST_NEIGHBOR", "DEFAULT")])
def test_resize_ios17(mode, sampling, tmp_path):
    check(lambda x: mb.resize(x=x, shape=np.array([9, 7], np.int32), resized_dims=np.uint32(2),
                              interpolation_mode=mode, sampling_mode=sampling), [X_SMALL], tmp_path)


# -- recurrent layers (unrolled) --------------------------------------------------------------------

T, B, I, H = 4, 2, 3, 5


def _rnn_weights(gates: int, back: bool = False) -> dict:
    suffix = "_back" if back else ""
    return {f"weight_ih{suffix}": rand(gates * H, I, scale=0.5), f"weight_hh{suffix}": rand(gates * H, H, scale=0.5),
            f"bias{suffix}": rand(gates * H, scale=0.5)}


LSTMS = {
    "forward_sequence": dict(direction="forward", output_sequence=True),
    "forward_last": dict(direction="forward", output_sequence=False),
    "reverse": dict(direction="reverse", output_sequence=True),
    "bidirectional": dict(direction="bidirectional", output_sequence=True),
    "peephole_clip": dict(direction="forward", output_sequence=True, peephole=True, clip=0.7),
    "activations": dict(direction="forward", output_sequence=True, recurrent_activation="hard_sigmoid",
                        cell_activation="relu", activation="linear"),
}


@pytest.mark.parametrize("name", list(LSTMS))
def test_lstm(name, tmp_path):
    opts = dict(LSTMS[name])
    dirs = 2 if opts["direction"] == "bidirectional" else 1
    weights = _rnn_weights(4)
    if dirs == 2:
        weights.update(_rnn_weights(4, back=True))
    if opts.pop("peephole", False):
        weights["peephole"] = rand(3 * H, scale=0.5)
    h0, c0 = rand(B, dirs * H, scale=0.3), rand(B, dirs * H, scale=0.3)
    check(lambda x: mb.lstm(x=x, initial_h=h0, initial_c=c0, **weights, **opts), [(T, B, I)], tmp_path)


@pytest.mark.parametrize("direction,sequence,reset_after", [("forward", True, False), ("reverse", False, False),
                                                            ("forward", True, True)])
def test_gru(direction, sequence, reset_after, tmp_path):
    weights = _rnn_weights(3)
    extra = {"reset_after": True, "input_bias": rand(3 * H, scale=0.5)} if reset_after else {}
    check(lambda x: mb.gru(x=x, initial_h=rand(B, H, scale=0.3), direction=direction, output_sequence=sequence,
                           **weights, **extra), [(T, B, I)], tmp_path, target=IOS18 if reset_after else IOS17)


@pytest.mark.parametrize("direction,activation", [("forward", "tanh"), ("reverse", "relu")])
def test_rnn(direction, activation, tmp_path):
    weights = _rnn_weights(1)
    check(lambda x: mb.rnn(x=x, initial_h=rand(B, H, scale=0.3), direction=direction, output_sequence=True,
                           activation=activation, **weights), [(T, B, I)], tmp_path)


def test_lstm_state_from_the_input(tmp_path):
    """Initial states computed from the input (batched), one step folded into the prediction axis."""
    weights = _rnn_weights(4)
    check(lambda x, h: mb.lstm(x=x, initial_h=h, initial_c=mb.mul(x=h, y=0.5), output_sequence=True, **weights),
          [(1, B, I), (B, H)], tmp_path)


# -- 8-bit activations (w8a8) ----------------------------------------------------------------------

@pytest.mark.parametrize("dtype,per_axis", [("int8", False), ("uint8", False), ("int8", True), ("uint8", True)])
def test_quantize_dequantize(dtype, per_axis, tmp_path):
    if per_axis:
        scale, axis = np.array([0.02, 0.05, 0.1, 0.04], np.float32), 1
        zero = np.array([0, 3, -2, 1], np.int8) if dtype == "int8" else np.array([128, 120, 130, 127], np.uint8)
    else:
        scale, axis = np.float32(0.03), None
        zero = np.int8(2) if dtype == "int8" else np.uint8(128)
    extra = {} if axis is None else {"axis": axis}

    def build(x):
        q = mb.quantize(input=x, scale=scale, zero_point=zero, output_dtype=dtype, **extra)
        return mb.dequantize(input=q, scale=scale, zero_point=zero, **extra)
    check(build, [X3], tmp_path, scale=2.0, atol=1e-6)


# -- compressed weights ---------------------------------------------------------------------------

def sub_byte(values, nbits: int, signed: bool = False) -> np.ndarray:
    name = f"{'int' if signed else 'uint'}{nbits}"
    return np.asarray(values).astype(types.nptype_from_builtin(types.string_to_builtin(name)))


def packed_bytes(values, nbits: int) -> np.ndarray:
    """iOS 16's packing: n-bit values least significant bit first, in bytes."""
    flat = np.asarray(values).reshape(-1).astype(np.int64) & ((1 << nbits) - 1)
    return np.packbits(((flat[:, None] >> np.arange(nbits)) & 1).astype(np.uint8).reshape(-1), bitorder="little")


W_SHAPE = (32, 16, 3, 3)          # a convolution of 16 -> 32 channels
W_COUNT = int(np.prod(W_SHAPE))


def _palette(nbits):
    return np.sort(rand(2 ** nbits, scale=0.3))


def _lut16(nbits):
    lut = _palette(nbits)
    idx = RNG.integers(0, 2 ** nbits, W_SHAPE)
    indices = packed_bytes(idx, nbits) if nbits < 8 else idx.astype(np.uint8).reshape(-1)
    return lambda: mb.constexpr_lut_to_dense(lut=lut, indices=indices, shape=np.array(W_SHAPE, np.uint32))


def _lut18(nbits, blocks=(1, 1, 1, 1), vector=1, axis=None, lut_dtype=np.float32):
    shape = list(W_SHAPE)
    if vector > 1:
        shape[axis] //= vector
    lut = rand(*blocks, 2 ** nbits, vector, scale=0.3).astype(lut_dtype)
    idx = sub_byte(RNG.integers(0, 2 ** nbits, shape), nbits)
    extra = {"vector_axis": axis} if vector > 1 else {}
    return lambda: mb.constexpr_lut_to_dense(indices=idx, lut=lut, **extra)


def _affine16(dtype):
    if dtype == "int8":
        data, zero = RNG.integers(-128, 128, W_SHAPE).astype(np.int8), RNG.integers(-3, 3, 32).astype(np.int8)
    else:
        data, zero = RNG.integers(0, 256, W_SHAPE).astype(np.uint8), np.uint8(128)
    scale = np.abs(rand(32, scale=0.01)) + 1e-3
    return lambda: mb.constexpr_affine_dequantize(quantized_data=data, zero_point=zero, scale=scale, axis=0)


def _blockwise18(nbits, signed, offset):
    lo, hi = (-(1 << (nbits - 1)), 1 << (nbits - 1)) if signed else (0, 1 << nbits)
    data = RNG.integers(lo, hi, W_SHAPE)
    data = sub_byte(data, nbits, signed) if nbits < 8 else data.astype(np.int8 if signed else np.uint8)
    scale = np.abs(rand(32, 16 // 8, 1, 1, scale=0.01)) + 1e-3          # blocks of 8 input channels
    extra = {}
    if offset == "int":
        off = RNG.integers(lo, hi, scale.shape)
        extra["offset"] = sub_byte(off, nbits, signed) if nbits < 8 else off.astype(data.dtype)
    elif offset == "float":
        extra["offset"] = rand(*scale.shape)
    return lambda: mb.constexpr_blockwise_shift_scale(data=data, scale=scale, **extra)


def _sparse16():
    mask = RNG.random(W_SHAPE) < 0.4
    values = rand(int(mask.sum()))
    return lambda: mb.constexpr_sparse_to_dense(nonzero_data=values, mask=packed_bytes(mask, 1),
                                                shape=np.array(W_SHAPE, np.uint32))


def _sparse18():
    mask = RNG.random(W_SHAPE) < 0.4
    return lambda: mb.constexpr_sparse_to_dense(nonzero_data=rand(int(mask.sum())), mask=sub_byte(mask, 1))


def _lut_sparse18(nbits):
    mask = RNG.random(W_SHAPE) < 0.5
    idx = sub_byte(RNG.integers(0, 2 ** nbits, int(mask.sum())), nbits)
    lut = rand(1, 1, 1, 1, 2 ** nbits, 1, scale=0.3)

    def build():
        m, values = mb.constexpr_lut_to_sparse(indices_mask=sub_byte(mask, 1), indices_nonzero_data=idx, lut=lut)
        return mb.constexpr_sparse_to_dense(nonzero_data=values, mask=m)
    return build


def _sparse_blockwise18(nbits):
    mask = RNG.random(W_SHAPE) < 0.5
    lo, hi = -(1 << (nbits - 1)), 1 << (nbits - 1)
    values = RNG.integers(lo, hi, int(mask.sum()))
    values = sub_byte(values, nbits, True) if nbits < 8 else values.astype(np.int8)
    scale = np.abs(rand(32, 1, 1, 1, scale=0.01)) + 1e-3

    def build():
        m, data = mb.constexpr_sparse_blockwise_shift_scale(data_mask=sub_byte(mask, 1), nonzero_data=values, scale=scale)
        return mb.constexpr_sparse_to_dense(nonzero_data=data, mask=m)
    return build


def _quantized_lut18():
    """A palette of int8 values, scaled to floats by its own constexpr op (coremltools' lut_dtype int8)."""
    idx = sub_byte(RNG.integers(0, 16, W_SHAPE), 4)
    lut = RNG.integers(-128, 128, (1, 1, 1, 1, 16, 1)).astype(np.int8)

    def build():
        floats = mb.constexpr_blockwise_shift_scale(data=lut, scale=np.full((1, 1, 1, 1, 1, 1), 0.01, np.float32))
        return mb.constexpr_lut_to_dense(indices=idx, lut=floats)
    return build


def _palette_then_scale18():
    """int8 weights from a palette of int8 values, then scaled per output channel."""
    idx = sub_byte(RNG.integers(0, 16, W_SHAPE), 4)
    lut = RNG.integers(-128, 128, (1, 1, 1, 1, 16, 1)).astype(np.int8)
    scale = np.abs(rand(32, 1, 1, 1, scale=0.01)) + 1e-3

    def build():
        return mb.constexpr_blockwise_shift_scale(data=mb.constexpr_lut_to_dense(indices=idx, lut=lut), scale=scale)
    return build


def _cast16():
    data = rand(*W_SHAPE).astype(np.float16)
    return lambda: mb.constexpr_cast(source_val=data, output_dtype="fp32")


IOS16 = ct.target.iOS16
# name: (target, weight builder, largest .aimodel size as a fraction of the dense fp32 weights)
COMPRESSED = {
    "lut_ios16_4bit": (IOS16, _lut16(4), 0.16),
    "lut_ios16_6bit": (IOS16, _lut16(6), 0.22),
    "lut_ios16_8bit": (IOS16, _lut16(8), 0.30),
    "lut_ios16_2bit": (IOS16, _lut16(2), 0.09),
    "lut_ios16_1bit": (IOS16, _lut16(1), 0.06),
    "lut_ios18_4bit": (IOS18, _lut18(4), 0.16),
    "lut_ios18_3bit": (IOS18, _lut18(3), 0.13),
    "lut_ios18_grouped": (IOS18, _lut18(2, blocks=(4, 1, 1, 1)), 0.09),
    "lut_ios18_vector": (IOS18, _lut18(4, vector=2, axis=1), 0.10),
    "affine_ios16_int8": (IOS16, _affine16("int8"), 0.30),
    "affine_ios16_uint8": (IOS16, _affine16("uint8"), 0.30),
    "blockwise_int4_offset": (IOS18, _blockwise18(4, True, "int"), 0.16),
    "blockwise_int4": (IOS18, _blockwise18(4, True, None), 0.16),
    "blockwise_uint4_float_offset": (IOS18, _blockwise18(4, False, "float"), 0.16),
    "blockwise_int8": (IOS18, _blockwise18(8, True, None), 0.30),
    "blockwise_uint8_offset": (IOS18, _blockwise18(8, False, "int"), 0.30),
    "sparse_ios16": (IOS16, _sparse16(), 0.50),
    "sparse_ios18": (IOS18, _sparse18(), 0.50),
    "lut_to_sparse_4bit": (IOS18, _lut_sparse18(4), 0.22),
    "lut_to_sparse_6bit": (IOS18, _lut_sparse18(6), 0.25),
    "sparse_blockwise_int8": (IOS18, _sparse_blockwise18(8), 0.22),
    "sparse_blockwise_int4": (IOS18, _sparse_blockwise18(4), 0.16),
    "cast_fp16": (IOS16, _cast16(), 0.55),
    "lut_of_int8_values_scaled": (IOS18, _quantized_lut18(), 0.16),
    "int8_palette_then_scale": (IOS18, _palette_then_scale18(), 0.16),
}


@pytest.mark.parametrize("name", list(COMPRESSED))
def test_compressed_conv_weight_stays_compressed(name, tmp_path):
    target, weight, fraction = COMPRESSED[name]
    check(lambda x: mb.conv(x=x, weight=weight(), pad_type="same"), [(1, 16, 6, 6)], tmp_path, target=target,
          atol=2e-3, rtol=1e-3)
    size = sum(f.stat().st_size for f in (tmp_path / "op.aimodel").iterdir())
    assert size < fraction * W_COUNT * 4 + 4096, f"{size} bytes for {W_COUNT} weights"


@pytest.mark.parametrize("consumer", ["linear", "matmul", "conv_transpose", "conv1d", "add", "batch_norm"])
def test_compressed_weight_in_other_ops(consumer, tmp_path):
    """A palette feeding each kind of op: kept compressed where the op takes a Core AI value, else
    decompressed at conversion, with a note (batch_norm's parameters are folded into constants)."""
    lut = _palette(4)

    def weight(shape):
        return mb.constexpr_lut_to_dense(lut=lut, indices=packed_bytes(RNG.integers(0, 16, shape), 4),
                                         shape=np.array(shape, np.uint32))

    builds = {
        "linear": ([(1, 32)], lambda x: mb.linear(x=x, weight=weight((24, 32)), bias=rand(24))),
        "matmul": ([(1, 5, 32)], lambda x: mb.matmul(x=x, y=weight((32, 24)))),
        "conv_transpose": ([(1, 16, 5, 5)], lambda x: mb.conv_transpose(x=x, weight=weight((16, 8, 3, 3)), strides=[2, 2])),
        "conv1d": ([(1, 16, 9)], lambda x: mb.conv(x=x, weight=weight((8, 16, 3)), pad_type="same")),
        "add": ([(1, 16, 4, 4)], lambda x: mb.add(x=x, y=weight((16, 4, 4)))),
        "batch_norm": ([(1, 256, 2, 2)], lambda x: mb.batch_norm(x=x, mean=weight((256,)),
                                                                 variance=np.ones(256, np.float32))),
    }
    shapes, build = builds[consumer]
    notes = check(build, shapes, tmp_path, target=IOS16, atol=1e-3)
    decompressed = consumer == "batch_norm"
    assert bool(notes) == decompressed, notes
    if not decompressed:
        size = sum(f.stat().st_size for f in (tmp_path / "op.aimodel").iterdir())
        count = {"linear": 24 * 32, "matmul": 32 * 24, "conv_transpose": 16 * 8 * 9, "conv1d": 8 * 16 * 3,
                 "add": 16 * 4 * 4}[consumer]
        assert size < count * 4 * 0.2 + 4096, f"{size} bytes for {count} weights"


def test_compression_core_ai_cannot_keep_is_decompressed_with_a_note(tmp_path):
    """Where Core AI's op refuses a compressed form, the weights are decompressed at conversion."""
    with mock.patch.object(coreai_authoring(), "lut_to_dense", side_effect=ValueError("no such palette")):
        notes = check(lambda x: mb.conv(x=x, weight=_lut16(4)(), pad_type="same"), [(1, 16, 6, 6)], tmp_path,
                      target=IOS16)
    assert notes and "decompressed at conversion: no such palette" in notes[0]
    size = sum(f.stat().st_size for f in (tmp_path / "op.aimodel").iterdir())
    assert size > W_COUNT * 4


def test_compressed_weights_in_an_fp16_program(tmp_path):
    """fp16 palettes and 4-bit blocks feeding fp16 convolutions, between casts (as `--precision fp16`
    programs compute)."""
    lut = _lut18(4, lut_dtype=np.float16)
    data = sub_byte(RNG.integers(-8, 8, (8, 32, 3, 3)), 4, True)
    scale = (np.abs(rand(8, 4, 1, 1, scale=0.01)) + 1e-3).astype(np.float16)

    def build(x):
        h = mb.cast(x=x, dtype="fp16")
        h = mb.relu(x=mb.conv(x=h, weight=lut(), pad_type="same"))
        h = mb.conv(x=h, weight=mb.constexpr_blockwise_shift_scale(data=data, scale=scale), pad_type="valid")
        return mb.cast(x=mb.softmax(x=mb.reduce_mean(x=h, axes=[2, 3]), axis=1), dtype="fp32")
    check(build, [(1, 16, 6, 6)], tmp_path, target=IOS18, atol=5e-3, rtol=0)


def test_shape_of_a_computed_value_is_a_constant(tmp_path):
    check(lambda x: mb.add(x=x, y=mb.cast(x=mb.reduce_sum(x=mb.shape(x=x), axes=[0]), dtype="fp32")),
          [X3], tmp_path)


def test_fill_like(tmp_path):
    check(lambda x: mb.add(x=x, y=mb.fill_like(ref_tensor=x, value=2.5)), [X3], tmp_path)


# -- refusals -------------------------------------------------------------------------------------

REFUSED = {
    "crop_resize_unaligned": ([(1, 2, 6, 6)], IOS17, lambda x: mb.crop_resize(
        x=x, boxes=np.array([[0, 0, 3, 3]], np.float32), box_indices=np.array([0], np.int32), target_height=2,
        target_width=2, sampling_mode="UNALIGN_CORNERS"), "crop_resize with sampling_mode 'UNALIGN_CORNERS'"),
    "gather_batch_dims": ([(1, 4, 5)], IOS17, lambda x: mb.gather(
        x=x, indices=np.zeros((1, 2), np.int32), axis=1, batch_dims=1), "(gather) uses batch_dims"),
    "computed_gather_indices": ([(1, 4, 5), (1, 2)], IOS17, lambda x, i: mb.gather(
        x=x, indices=mb.cast(x=i, dtype="int32"), axis=1), "(gather) uses a computed 'indices'"),
    "conv3d": ([(1, 2, 3, 4, 4)], IOS17, lambda x: mb.conv(x=x, weight=rand(2, 2, 1, 1, 1)), "3-D convolution"),
    "crop_resize_indexed_boxes_on_a_batch": ([(2, 2, 6, 6)], ct.target.iOS16, lambda x: mb.crop_resize(
        x=x, roi=np.array([[1, 0, 0, 3, 3]], np.float32).reshape(1, 1, 5, 1, 1), target_height=2, target_width=2),
        "boxes with batch indices on 2 images"),
    "computed_conv_weights": ([(1, 2, 4, 4), (3, 2, 1, 1)], IOS17, lambda x, w: mb.conv(x=x, weight=w),
                              "(conv) uses weights computed from the image"),
    "resize_three_axes": ([(1, 2, 3, 4)], IOS17, lambda x: mb.resize(
        x=x, shape=np.array([4, 6, 8], np.int32), resized_dims=np.uint32(3)), "resizing more than two axes"),
    "topk": ([(1, 6)], IOS17, lambda x: mb.topk(x=x, k=2)[0], "(topk) has no Core AI lowering"),
}


@pytest.mark.parametrize("name", list(REFUSED))
def test_refused_op_names_op_and_parameter(name):
    shapes, target, build, message = REFUSED[name]
    mlmodel = convert(build, shapes, target)
    with pytest.raises(UnsupportedModelError, match=re.escape(message)):
        lower_function(mlmodel)


# -- `--precision` end to end (slow: each scheme converts a Keras model with coremltools) -----------

@pytest.fixture(scope="module")
def small_classifier():
    keras = pytest.importorskip("keras")
    keras.utils.set_random_seed(5)
    model = keras.Sequential([
        keras.Input((16, 16, 1)),
        keras.layers.Conv2D(16, 3, activation="relu"),
        keras.layers.MaxPooling2D(),
        keras.layers.Conv2D(32, 3, activation="relu", padding="same"),
        keras.layers.BatchNormalization(),
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(10, activation="softmax"),
    ])
    images = np.random.default_rng(1).integers(0, 256, (64, 16, 16, 1)).astype(np.uint8)
    return model, images


def _lowered_sizes_and_outputs(mlmodel, images, path):
    from kerasml.coreai.lowering import lower_model
    from kerasml.files import path_size

    A, R = coreai_authoring(), coreai_runtime()
    folder = Path(mlmodel.weights_dir).parent
    lowered = lower_model(mlmodel.get_spec(), folder)
    A.AIProgram(lowered.module).save_asset(path)

    async def go():
        async with A.AIModelAsset.load(path).executable() as model:
            out = await model.load_function("classify")({"image": R.NDArray(images.astype(np.float32))})
            return out["labelProbabilities"].numpy()

    with coreai_notes_muted():
        got = asyncio.run(go())
    return path_size(path), path_size(folder), got


@pytest.mark.slow
@pytest.mark.parametrize("precision,sparsity", [("fp16", None), ("int8", None), ("palette8", None), ("palette6", None),
                                                ("palette4", None), ("palette2", None), ("int4", None), ("w8a8", None),
                                                ("fp32", 0.5), ("palette4", 0.5), ("int8", 0.5)])
def test_precision_schemes_stay_compressed_in_core_ai(small_classifier, precision, sparsity, tmp_path):
    """kerasml's own compression (coreml/compress.py) lowered: the .aimodel shrinks as the .mlpackage
    does, and Apple's runtime matches kerasml's on the same compressed program."""
    from kerasml.conversion.to_coreml import convert_keras_model

    model, images = small_classifier
    labels = [str(i) for i in range(10)]
    reference = convert_keras_model(model, "mlpackage", "fp32", labels)
    ref_ai, ref_ml, _ = _lowered_sizes_and_outputs(reference, images[:4], tmp_path / "fp32.aimodel")
    mlmodel = convert_keras_model(model, "mlpackage", precision, labels, sparsity=sparsity,
                                  calibration=images if precision == "w8a8" else None)
    size_ai, size_ml, got = _lowered_sizes_and_outputs(mlmodel, images, tmp_path / "compressed.aimodel")
    want = load_model(mlmodel).predict_probabilities(images)
    atol = {"fp16": 5e-3, "w8a8": 0.1}.get(precision, 1e-4)
    np.testing.assert_allclose(got, want, atol=atol)
    # Each of w8a8's quantize/dequantize ops is several Core AI ops (scale, round, clamp, cast, shift), about
    # 260 bytes more than in the ML Program (measured: 8 of them, 2.1 kB): on a model this small, 8 points.
    spec = mlmodel.get_spec()
    quantizing = sum(op.type in ("quantize", "dequantize") for function in spec.mlProgram.functions.values()
                     for op in function.block_specializations[function.opset].operations)
    assert size_ai / ref_ai < size_ml / ref_ml + 0.02 + 300 * quantizing / ref_ai, (
        size_ai, ref_ai, size_ml, ref_ml, quantizing)


# -- fp16 programs: each op on float16 values, between casts (as --precision fp16 computes) --------

def in_fp16(build):
    def run(*inputs):
        out = build(*[mb.cast(x=x, dtype="fp16") for x in inputs])
        outs = out if isinstance(out, (list, tuple)) else [out]
        outs = [mb.cast(x=o, dtype="fp32") if o.dtype == types.fp16 else o for o in outs]
        return outs if isinstance(out, (list, tuple)) else outs[0]
    return run


FP16_CASES = {
    # (the cases whose builders write float32 constants next to the value are left out)
    **{f"unary_{k}": ([X4], v) for k, v in UNARY.items()
       if k not in ("cast_fp16_and_back", "prelu", "softplus_parametric", "clip", "tan", "atanh", "threshold",
                    "cast_int32", "logical_not")},
    **{f"binary_{k}": ([X4, (1, 3, 1, 6)], lambda x, y, k=k: _binary(k, x, y))
       for k in BINARY if k not in ("pow", "real_div", "floor_div", "mod")},
    # divisors that are powers of two divide exactly in float16 as in float32: no quotient near an
    # integer rounds differently in the two
    **{f"binary_{k}_by_constant": ([X4], lambda x, k=k: getattr(mb, k)(
        x=x, y=np.array([0.5, 1, 2, 4, 0.25, 8], np.float16))) for k in ("real_div", "floor_div", "mod")},
    "conv_same": ([X_IMG], lambda x: mb.conv(x=x, weight=rand(6, 4, 3, 3).astype(np.float16),
                                             bias=rand(6).astype(np.float16), pad_type="same", strides=[2, 2])),
    "conv_transpose": ([X_IMG], lambda x: mb.conv_transpose(x=x, weight=rand(4, 3, 3, 3).astype(np.float16),
                                                            strides=[2, 2])),
    "linear": ([(1, 12)], lambda x: mb.linear(x=x, weight=rand(7, 12).astype(np.float16), bias=rand(7).astype(np.float16))),
    "matmul": ([(1, 5, 6), (1, 6, 3)], lambda x, y: mb.matmul(x=x, y=y)),
    **{f"pool_{k}": ([X_IMG], lambda x, k=k: getattr(mb, k)(x=x, kernel_sizes=[3, 3], strides=[2, 2], pad_type="same"))
       for k in ("max_pool", "avg_pool", "l2_pool")},
    "batch_norm": ([X3], lambda x: mb.batch_norm(x=x, mean=rand(4).astype(np.float16),
                                                 variance=(np.abs(rand(4)) + 0.5).astype(np.float16))),
    "instance_norm": ([X3], lambda x: mb.instance_norm(x=x, gamma=rand(4).astype(np.float16),
                                                       beta=rand(4).astype(np.float16))),
    "layer_norm": ([X3], lambda x: mb.layer_norm(x=x, axes=[-1], gamma=rand(5).astype(np.float16))),
    "l2_norm": ([X3], lambda x: mb.l2_norm(x=x)),
    "local_response_norm": ([X3], lambda x: mb.local_response_norm(x=x, size=3)),
    **{f"reduce_{k}": ([X3], lambda x, k=k: getattr(mb, k)(x=x, axes=[2, 3], keep_dims=False))
       for k in ("reduce_mean", "reduce_sum", "reduce_max", "reduce_l2_norm", "reduce_log_sum_exp")},
    "argmax": ([X3], lambda x: mb.reduce_argmax(x=x, axis=1)),
    "resize_bilinear": ([X_SMALL], RESIZES["resize_bilinear_UNALIGN_CORNERS"]),
    "upsample_nearest": ([X_SMALL], RESIZES["upsample_nearest"]),
    "concat_interleave": ([X3, X3], SHAPE_OPS["concat_interleave"][1]),
    "pad_reflect": ([X3], lambda x: mb.pad(x=x, **PADS["reflect"])),
    "gather": ([X3], lambda x: mb.gather(x=x, **GATHER["axis1"])),
    "softmax": ([X3], lambda x: mb.softmax(x=x, axis=1)),
    "select": ([X4, X4], lambda x, y: mb.select(cond=mb.greater(x=x, y=y), a=x, b=y)),
}


@pytest.mark.parametrize("name", list(FP16_CASES))
def test_op_in_fp16(name, tmp_path):
    shapes, build = FP16_CASES[name]
    check(in_fp16(build), shapes, tmp_path, scale=2.0, atol=2e-2, rtol=1e-2)


@pytest.mark.parametrize("kind", ["round", "floor", "ceil", "sign", "floor_div", "mod"])
def test_exact_ties_and_signs(kind, tmp_path):
    """Halves round to even (MIL's round is np.round); integral and negative values, zero."""
    values = np.array([-2.5, -1.5, -0.5, 0.5, 1.5, 2.5, -2.0, 0.0, 3.0, -0.0, 7.25, -7.25], np.float32)
    feeds = {"x0": np.stack([values, values * 2, values - 1])}   # 3 predictions of (1, 12)
    if kind in ("floor_div", "mod"):
        build = lambda x: getattr(mb, kind)(x=x, y=np.float32(-2.0) if kind == "mod" else np.float32(2.0))  # noqa: E731
    else:
        build = lambda x: getattr(mb, kind)(x=x)  # noqa: E731
    check(build, [(1, 12)], tmp_path, feeds=feeds, atol=0, rtol=0)
