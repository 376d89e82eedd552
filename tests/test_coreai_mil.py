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
import inspect
from pathlib import Path
from typing import Annotated

import numpy as np
import pytest

ct = pytest.importorskip("coremltools")
pytest.importorskip("coreai.authoring")

from coremltools.converters.mil import Builder as mb  # noqa: E402
from coremltools.converters.mil.mil import types  # noqa: E402

from kerasml.coreai.library import authoring, runtime, runtime_notes_muted  # noqa: E402
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
    return ct.convert(program, convert_to="mlprogram", minimum_deployment_target=target,
                      compute_precision=ct.precision.FLOAT32, pass_pipeline=ct.PassPipeline.EMPTY,
                      skip_model_load=True)


def lower_function(mlmodel):
    """The program's main function as a Core AI module `main`, each input with an open prediction
    axis (folded into a leading axis of size 1, else stacked before it); outputs as (N, values) rows."""
    A = authoring()
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
    return module, [i.name for i in inputs], outputs


def run_core_ai(module, feeds: dict, n_outputs: int, path) -> list[np.ndarray]:
    A, R = authoring(), runtime()
    A.AIProgram(module).save_asset(path)

    async def go():
        async with A.AIModelAsset.load(path).executable() as model:
            fn = model.load_function("main")
            out = await fn({k: R.NDArray(np.ascontiguousarray(v)) for k, v in feeds.items()})
            return [out[f"out{k}"].numpy() for k in range(n_outputs)]

    with runtime_notes_muted():
        return asyncio.run(go())


def batch_for(shape, scale=1.0) -> np.ndarray:
    """N inputs of one program input's shape: a leading 1 holds the predictions, else a new axis does."""
    if shape and shape[0] == 1:
        return rand(N, *shape[1:], scale=scale)
    return rand(N, *shape, scale=scale)


def check(build, shapes, tmp_path, target=IOS17, atol=1e-4, rtol=1e-4, feeds=None, scale=1.0, dtypes=None):
    """Lower `build` as a program, run both runtimes on the same batch, compare every output."""
    mlmodel = convert(build, shapes, target, dtypes)
    module, names, outputs = lower_function(mlmodel)
    feeds = feeds or {}
    feeds = {name: feeds.get(name, batch_for(shape, scale)) for name, shape in zip(names, shapes)}
    got = run_core_ai(module, feeds, len(outputs), tmp_path / "op.aimodel")
    want = load_model(mlmodel).predict({k: v.astype(np.float32) for k, v in feeds.items()})
    for name, g in zip(outputs, got):
        w = np.asarray(want[name], np.float32).reshape(len(g), -1)
        np.testing.assert_allclose(g, w, atol=atol, rtol=rtol, err_msg=f"output {name}")
    return got


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
        check(lambda x: getattr(mb, kind)(x=c, y=mb.add(x=mb.abs(x=x), y=0.5)) if kind in ("floor_div", "mod", "real_div", "pow")
              else _binary(kind, c, x), [X4], tmp_path, scale=2)
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


@pytest.mark.parametrize("equation", list(EINSUM))
def test_einsum(equation, tmp_path):
    check(lambda x, y: mb.einsum(values=(x, y), equation=equation), EINSUM[equation], tmp_path)
