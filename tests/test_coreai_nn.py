"""NeuralNetwork models lowered to Core AI (kerasml/coreai/lowering/nn), run by Apple's runtime and
compared with kerasml's runtime: one small hand-built model per layer type and option (coremltools'
NeuralNetworkBuilder, an image input with a scaler so values are negative too), then whole old-style
classifiers through `kerasml convert --format aimodel`, and the refusals.
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

import numpy as np
import pytest

from kerasml.runtime import UnsupportedModelError, load_model

pytest.importorskip("coreai.authoring", reason="Apple's coreai-core is not installed here")
ct = pytest.importorskip("coremltools")
from coremltools.models import datatypes  # noqa: E402
from coremltools.models.neural_network import NeuralNetworkBuilder  # noqa: E402

from kerasml.libs import coreai_authoring, coreai_runtime, coreai_notes_muted  # noqa: E402
from kerasml.coreai.lowering import lower_model  # noqa: E402

RNG = np.random.default_rng(23)
COLOUR_SPACES = {"GRAYSCALE": 10, "RGB": 20, "BGR": 30}


def rand(*shape, scale: float = 1.0) -> np.ndarray:
    return (RNG.standard_normal(shape) * scale).astype(np.float32)


def network(shape=(3, 5, 6), *, rank_n: bool = True, classifier: bool = False) -> NeuralNetworkBuilder:
    """A builder whose one input, `image`, becomes an image of `shape` (C, H, W) in `checked`."""
    return NeuralNetworkBuilder([("image", datatypes.Array(*shape))], [("out", None)],
                                disable_rank5_shape_mapping=rank_n, mode="classifier" if classifier else None)


def as_image(b: NeuralNetworkBuilder, *, scale=1 / 64, bias=(-2.0, -2.0, -2.0), colour=None):
    """b's spec with its input as an image and a scaler (default: pixels to [-2, 2))."""
    spec = b.spec
    c, h, w = spec.description.input[0].type.multiArrayType.shape
    colour = colour or ("GRAYSCALE" if c == 1 else "RGB")
    b.set_pre_processing_parameters(image_input_names=["image"], is_bgr=colour == "BGR", red_bias=bias[0],
                                    green_bias=bias[1], blue_bias=bias[2], gray_bias=bias[0], image_scale=scale)
    image = spec.description.input[0].type.imageType
    image.width, image.height, image.colorSpace = w, h, COLOUR_SPACES[colour]
    return spec


def pixels(spec, n: int = 3) -> np.ndarray:
    image = spec.description.input[0].type.imageType
    channels = 1 if image.colorSpace == COLOUR_SPACES["GRAYSCALE"] else 3
    return RNG.integers(0, 256, (n, image.height, image.width, channels)).astype(np.float32)


def core_ai(spec, images: np.ndarray, labels: list | None = None) -> np.ndarray:
    """The spec lowered, saved as an .aimodel and run on `images` by Apple's runtime."""
    A, R = coreai_authoring(), coreai_runtime()
    lowered = lower_model(spec, None, labels=labels)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "model.aimodel"
        A.AIProgram(lowered.module).save_asset(path)

        async def go():
            async with A.AIModelAsset.load(path).executable() as model:
                function = model.load_function("classify")
                result = await function({"image": R.NDArray(np.ascontiguousarray(images, np.float32))})
                return result["labelProbabilities"].numpy()

        with coreai_notes_muted():
            return np.array(asyncio.run(go()))


def checked(b: NeuralNetworkBuilder, *, atol: float = 1e-5, rtol: float = 1e-5, **image) -> np.ndarray:
    """Core AI's output of b's network against kerasml's runtime on random images."""
    spec = as_image(b, **image)
    images = pixels(spec)
    want = load_model(spec).predict_probabilities(images)
    got = core_ai(spec, images, labels=list(range(want.shape[1])))
    np.testing.assert_allclose(got, want, atol=atol, rtol=rtol)
    return want


# -- activations ----------------------------------------------------------------------------------
ACTIVATIONS = [
    ("RELU", None), ("LEAKYRELU", [0.2]), ("THRESHOLDEDRELU", 0.5), ("SIGMOID", None), ("TANH", None),
    ("LINEAR", [1.5, -0.25]), ("SCALED_TANH", [1.7, 0.6]), ("SIGMOID_HARD", [0.3, 0.4]), ("ELU", 0.7),
    ("SOFTSIGN", None), ("SOFTPLUS", None), ("PRELU", rand(3, scale=0.3)),
    ("PARAMETRICSOFTPLUS", [rand(3, scale=0.3) + 1, rand(3, scale=0.3) + 1]),
]


@pytest.mark.parametrize("kind,params", ACTIVATIONS, ids=[a for a, _ in ACTIVATIONS])
def test_activation(kind, params):
    b = network(rank_n=False)
    b.add_activation("act", kind, "image", "out", params)
    checked(b)


@pytest.mark.parametrize("layer", ["clampedReLU", "erf", "EXACT", "TANH_APPROXIMATION", "SIGMOID_APPROXIMATION"])
def test_clamped_relu_erf_and_the_three_gelus(layer):
    b = network()
    if layer == "clampedReLU":
        b.add_clamped_relu("clamp", "image", "out", alpha=0.1, beta=1.5)
    elif layer == "erf":
        b.add_erf("erf", "image", "out")
    else:
        b.add_gelu("gelu", "image", "out", mode=layer)
    checked(b)


# -- elementwise ----------------------------------------------------------------------------------
@pytest.mark.parametrize("mode,alpha", [("ADD", None), ("ADD", 0.5), ("MULTIPLY", None), ("MULTIPLY", -1.5),
                                        ("AVE", None), ("MAX", None), ("MIN", None)])
def test_rank5_merges(mode, alpha):
    b = network(rank_n=False)
    b.add_activation("tanh", "TANH", "image", "tanh")
    b.add_activation("sig", "SIGMOID", "image", "sig")
    inputs = ["image"] if alpha is not None else ["image", "tanh", "sig"]
    b.add_elementwise("merge", inputs, "out", mode, alpha=alpha)
    checked(b)


def test_scale_bias_and_their_shapes():
    b = network(rank_n=False)
    b.add_scale("scale", rand(3), rand(1, 5, 6), True, "image", "scaled", shape_scale=[3], shape_bias=[1, 5, 6])
    b.add_bias("bias", rand(3, 5, 6), "scaled", "out", shape_bias=[3, 5, 6])
    checked(b)


@pytest.mark.parametrize("mode,alpha,shift,scale,positive", [
    ("sqrt", 1.0, 0, 1.0, True), ("rsqrt", 1.0, 0.5, 1.0, True), ("inverse", 1.0, 0, 2.0, True),
    ("power", 3.0, 0, 1.0, False), ("exp", 1.0, -1.0, 0.5, False), ("log", 1.0, 0, 1.0, True),
    ("abs", 1.0, 1.0, 2.0, False), ("threshold", 0.3, 0, 1.0, False)])
def test_unary(mode, alpha, shift, scale, positive):
    b = network(rank_n=False)
    b.add_unary("unary", "image", "out", mode, alpha=alpha, shift=shift, scale=scale)
    checked(b, **({"bias": (0.01, 0.01, 0.01)} if positive else {}))


@pytest.mark.parametrize("kind", ["add", "subtract", "multiply", "divide", "max", "min", "pow", "mod",
                                  "floor_div"])
def test_broadcastable_arithmetic_with_a_constant(kind):
    b = network()
    constant = rand(3, 1, 6) if kind != "pow" else np.float32([1, 2, 3]).reshape(3, 1, 1)
    if kind in ("divide", "mod", "floor_div"):
        constant = np.abs(constant) + 0.5
    b.add_load_constant_nd("const", "const", constant, constant.shape)
    getattr(b, f"add_{kind}_broadcastable")(kind, ["image", "const"], "out")
    checked(b)


def test_comparisons_logic_and_where_give_ones_and_zeros():
    b = network()
    b.add_reduce_mean("mean", "image", "mean", axes=[-1], keepdims=True)
    b.add_greater_than("gt", ["image", "mean"], "gt")
    b.add_greater_than("ge", ["image"], "ge", use_greater_than_equal=True, alpha=0.0)
    b.add_less_than("lt", ["image", "mean"], "lt", use_less_than_equal=True)
    b.add_equal("eq", ["gt", "ge"], "eq")
    b.add_logical("and", ["eq", "lt"], "and", "AND")
    b.add_logical("not", ["and"], "not", "NOT")
    b.add_where_broadcastable("where", ["not", "image", "mean"], "where")
    b.add_clip("clip", "where", "clip", min_value=-0.5, max_value=0.75)
    b.add_concat_nd("out", ["gt", "ge", "lt", "eq", "and", "not", "clip"], "out", axis=1)
    checked(b)


def test_rank_n_unary_math():
    b = network()
    names = []
    for kind in ("ceil", "floor", "sign", "round", "exp2", "sin", "cos", "tan", "atan", "sinh", "cosh", "asinh"):
        getattr(b, f"add_{kind}")(kind, "image", kind)
        names.append(kind)
    b.add_clip("unit", "image", "unit", min_value=-0.9, max_value=0.9)
    for kind in ("asin", "acos", "atanh"):
        getattr(b, f"add_{kind}")(kind, "unit", kind)
        names.append(kind)
    b.add_concat_nd("out", names, "out", axis=1)
    checked(b, atol=3e-5)


# -- convolution and pooling ----------------------------------------------------------------------
@pytest.mark.parametrize("stride,dilation,groups,padding", [
    ((1, 1), (1, 1), 1, "valid"), ((2, 1), (1, 2), 1, (1, 0, 2, 1)), ((1, 1), (2, 2), 3, "same"),
    ((2, 2), (1, 1), 1, "same_top"), ((1, 2), (1, 1), 3, "valid")])
def test_convolution(stride, dilation, groups, padding):
    b = network((3, 8, 7), rank_n=False)
    w = rand(6, 3 // groups, 3, 2, scale=0.3)
    pads = dict(zip(("padding_top", "padding_bottom", "padding_left", "padding_right"), padding)) \
        if isinstance(padding, tuple) else {}
    b.add_convolution("conv", 3 // groups, 6, 3, 2, *stride, "same" if "same" in str(padding) else "valid", groups,
                      w.transpose(2, 3, 1, 0), rand(6), True, input_name="image", output_name="out",
                      dilation_factors=list(dilation), same_padding_asymmetry_mode=(
                          "TOP_LEFT_HEAVY" if padding == "same_top" else "BOTTOM_RIGHT_HEAVY"), **pads)
    checked(b)


@pytest.mark.parametrize("stride,padding,output_shape,groups", [
    ((2, 2), "valid", None, 1), ((2, 3), (1, 0, 0, 2), None, 3), ((2, 2), "same", None, 1),
    ((3, 2), "valid", (11, 9), 1)])
def test_deconvolution(stride, padding, output_shape, groups):
    b = network((3, 4, 5), rank_n=False)
    w = rand(3, 6 // groups, 3, 3, scale=0.3)    # (C_in, C_out / groups, kH, kW)
    pads = dict(zip(("padding_top", "padding_bottom", "padding_left", "padding_right"), padding)) \
        if isinstance(padding, tuple) else {}
    b.add_convolution("deconv", 3, 6, 3, 3, *stride, "same" if padding == "same" else "valid", groups,
                      w.transpose(2, 3, 1, 0), rand(6), True, is_deconv=True, output_shape=output_shape,
                      input_name="image", output_name="out", **pads)
    checked(b)


@pytest.mark.parametrize("encoding", [(16, "linear"), (8, "linear"), (4, "linear_lut")])
def test_convolution_weights_in_every_encoding(encoding):
    from coremltools.models.neural_network import quantization_utils as qu

    b = network((3, 6, 6), rank_n=False)
    b.add_convolution("conv", 3, 4, 3, 3, 1, 1, "valid", 1, rand(3, 3, 3, 4), rand(4), True, input_name="image",
                      output_name="out")
    spec = as_image(b)
    spec = qu.quantize_weights(ct.models.MLModel(spec, skip_model_load=True), encoding[0],
                               quantization_mode=encoding[1]).get_spec()
    weights = spec.neuralNetwork.layers[0].convolution.weights
    assert len(weights.float16Value if encoding[0] == 16 else weights.rawValue) > 0
    images = pixels(spec)
    want = load_model(spec).predict_probabilities(images)
    np.testing.assert_allclose(core_ai(spec, images, list(range(want.shape[1]))), want, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("kind", ["MAX", "AVERAGE", "L2"])
@pytest.mark.parametrize("padding,kernel,stride,exclude", [
    ("VALID", (2, 3), (2, 1), True), ("SAME", (3, 3), (2, 2), True), ("SAME", (3, 2), (2, 2), False),
    ("INCLUDE_LAST_PIXEL", (3, 3), (2, 2), True), ("INCLUDE_LAST_PIXEL", (2, 2), (2, 2), False)])
def test_pooling(kind, padding, kernel, stride, exclude):
    b = network((3, 7, 8), rank_n=False)
    pads = {"padding_top": 1, "padding_bottom": 1} if padding == "INCLUDE_LAST_PIXEL" else \
        {"padding_top": 1, "padding_bottom": 0, "padding_left": 0, "padding_right": 2} if padding == "VALID" else {}
    b.add_pooling("pool", *kernel, *stride, kind, padding, "image", "out", exclude_pad_area=exclude, **pads)
    checked(b)


@pytest.mark.parametrize("kind", ["MAX", "AVERAGE", "L2"])
def test_global_pooling(kind):
    b = network((3, 7, 8))
    b.add_pooling("pool", 1, 1, 1, 1, kind, "VALID", "image", "out", is_global=True)
    checked(b)


@pytest.mark.parametrize("mode", ["constant", "reflection", "replication"])
def test_padding_layer(mode):
    b = network(rank_n=False)
    b.add_padding("pad", left=1, right=2, top=2, bottom=1, value=0.5, input_name="image", output_name="out",
                  padding_type=mode)
    checked(b)


def test_constant_pad_of_every_axis_and_to_a_given_size():
    b = network()
    b.add_constant_pad("pad", ["image"], "padded", value=-1.0, pad_amounts=[1, 0, 0, 2, 1, 1, 0, 3])
    b.add_constant_pad("out", ["padded"], "out", value=0.5, pad_to_given_output_size_mode=True,
                       pad_amounts=[0, 0, 0, 6, 9, 0, 0, 10])
    checked(b)


# -- linear algebra -------------------------------------------------------------------------------
def test_inner_product_flattens_chw_and_multiplies_vectors():
    b = network((3, 4, 2), rank_n=False)
    b.add_inner_product("dense", rand(5, 24), rand(5), 24, 5, True, "image", "dense")
    b.add_activation("relu", "RELU", "dense", "relu")
    b.add_inner_product("out", rand(4, 5), None, 5, 4, False, "relu", "out")
    checked(b)


def test_batched_matmul_with_weights_and_with_two_inputs():
    b = network((3, 4, 6))
    b.add_batched_mat_mul("weights", ["image"], "projected", weight_matrix_rows=6, weight_matrix_columns=5,
                          W=rand(6, 5), bias=rand(5))
    b.add_batched_mat_mul("pairs", ["projected", "image"], "pairs", transpose_a=True)      # (1, 3, 5, 6)
    b.add_load_constant_nd("const", "const", rand(2, 6, 3), (2, 6, 3))
    b.add_reshape_static("flat", "pairs", "flat", (15, 6))
    b.add_batched_mat_mul("by_constant", ["flat", "const"], "by_constant")                 # (2, 15, 3)
    b.add_batched_mat_mul("out", ["const", "by_constant"], "out", transpose_b=True)       # (2, 6, 15)
    checked(b, atol=1e-4)


def test_dot_and_cosine_similarity():
    b = network(rank_n=False)
    b.add_activation("tanh", "TANH", "image", "tanh")
    b.add_elementwise("dot", ["image", "tanh"], "dot", "DOT")
    b.add_elementwise("cos", ["image", "tanh"], "cos", "COS")
    b.add_elementwise("out", ["dot", "cos"], "out", "ADD")
    checked(b)


@pytest.mark.parametrize("kind", ["embedding", "embeddingND"])
def test_embeddings_of_ids_computed_from_the_image(kind):
    b = network((1, 4, 5), rank_n=kind == "embeddingND")
    b.add_unary("ids", "image", "ids", "abs")                 # grayscale 0..3 as ids
    if kind == "embeddingND":
        b.add_reshape_static("column", "ids", "column", (20, 1))
        b.add_embedding_nd("embed", "column", "out", vocab_size=4, embedding_size=3, W=rand(3, 4), b=rand(3))
    else:
        b.add_reshape("column", "ids", "column", (20, 1, 1, 1), 0)
        b.add_embedding("embed", rand(3, 4), rand(3), 4, 3, True, "column", "out")
    spec = as_image(b, scale=1.0, bias=(0.0, 0.0, 0.0))
    images = RNG.integers(0, 4, (3, 4, 5, 1)).astype(np.float32)
    want = load_model(spec).predict_probabilities(images)
    np.testing.assert_allclose(core_ai(spec, images, list(range(want.shape[1]))), want, atol=1e-6)


# -- normalisation --------------------------------------------------------------------------------
def test_batchnorm_with_statistics_and_as_instance_norm():
    b = network(rank_n=False)
    b.add_batchnorm("bn", 3, rand(3), rand(3), rand(3), np.abs(rand(3)) + 0.1, "image", "bn")
    b.add_batchnorm("out", 3, rand(3), rand(3), input_name="bn", output_name="out", compute_mean_var=True,
                    instance_normalization=True, epsilon=1e-3)
    checked(b)


@pytest.mark.parametrize("across,variance", [(True, True), (False, True), (False, False)])
def test_mvn(across, variance):
    b = network(rank_n=False)
    b.add_mvn("mvn", "image", "out", across_channels=across, normalize_variance=variance, epsilon=1e-4)
    checked(b)


def test_l2_normalize_lrn_and_layer_normalization():
    b = network((3, 5, 6), rank_n=False)
    b.add_convolution("conv", 3, 7, 1, 1, 1, 1, "valid", 1, rand(1, 1, 3, 7), None, False, input_name="image",
                      output_name="conv")
    b.add_l2_normalize("l2", "conv", "l2", epsilon=1e-3)
    b.add_lrn("lrn", "conv", "lrn", alpha=0.3, beta=0.75, local_size=3, k=2.0)
    b.add_elementwise("sum", ["l2", "lrn"], "sum", "ADD")
    b.spec.specificationVersion = 4
    b.add_layer_normalization("out", "sum", "out", [5, 6], rand(5, 6), rand(5, 6), eps=1e-4)
    checked(b)


# -- reshaping and data movement ------------------------------------------------------------------
@pytest.mark.parametrize("mode", [0, 1])
def test_rank5_reshape_flatten_and_permute(mode):
    b = network((3, 4, 2), rank_n=False)
    b.add_reshape("reshape", "image", "reshaped", (2, 6, 2), mode)
    b.add_permute("permute", (0, 3, 1, 2), "reshaped", "permuted")
    b.add_flatten("out", mode, "permuted", "out")
    checked(b)


def test_rank_n_reshapes_and_transpose():
    b = network((3, 4, 2))
    b.add_transpose("t", (0, 2, 3, 1), "image", "t")
    b.add_flatten_to_2d("flat", "t", "flat", axis=2)                # (4, 6)
    b.add_expand_dims("expand", "flat", "expanded", axes=[0, -1])     # (1, 4, 6, 1)
    b.add_squeeze("squeeze", "expanded", "squeezed", axes=[-1])
    b.add_rank_preserving_reshape("rp", "squeezed", "rp", (0, 2, -1))
    b.add_reshape_static("out", "rp", "out", (12, 2))
    checked(b)


def test_rank5_concat_split_slice_and_flatten():
    b = network((3, 6, 5), rank_n=False)
    b.add_activation("tanh", "TANH", "image", "tanh")
    b.add_elementwise("cat", ["image", "tanh"], "cat", "CONCAT")                 # (6, 6, 5)
    b.add_split("split", "cat", ["a", "b", "c"])                                 # (2, 6, 5) each
    b.add_slice("rows", "b", "rows", "height", start_index=1, end_index=-1, stride=2)
    b.add_slice("cols", "c", "cols", "width", start_index=1, end_index=5, stride=3)
    b.add_slice("chans", "a", "chans", "channel", start_index=1, end_index=2)
    for name in ("rows", "cols", "chans"):
        b.add_flatten(f"flat_{name}", 0, name, f"flat_{name}")
    b.add_elementwise("out", ["flat_rows", "flat_cols", "flat_chans"], "out", "CONCAT")
    checked(b)


def test_concat_split_and_slice_rank_n():
    b = network((3, 6, 5))
    b.add_load_constant_nd("const", "const", rand(1, 3, 6, 2), (1, 3, 6, 2))
    b.add_concat_nd("cat", ["image", "const"], "cat", axis=-1)                      # (1, 3, 6, 7)
    b.add_concat_nd("interleaved", ["cat", "cat"], "interleaved", axis=1, interleave=True)
    b.add_split_nd("split", "interleaved", ["a", "b"], axis=-2, split_sizes=[2, 4])
    b.add_slice_static("sliced", "b", "sliced", begin_ids=[0, 5, 3, 6], end_ids=[1, 0, 0, 0],
                       strides=[1, -2, -1, -3], begin_masks=[False, False, False, False],
                       end_masks=[True, True, True, True])
    b.add_slice_static("row", "a", "row", begin_ids=[0, 1, -1, 0], end_ids=[1, 4, 0, 7], strides=[1, 1, 1, 2],
                       begin_masks=[False] * 4, end_masks=[False] * 4, squeeze_masks=[True, False, True, False])
    b.add_reshape_static("flat_a", "sliced", "flat_a", (-1,))
    b.add_reshape_static("flat_b", "row", "flat_b", (-1,))
    b.add_concat_nd("out", ["flat_a", "flat_b"], "out", axis=0)
    checked(b)


def test_stack_reverse_tile_and_gather():
    b = network((3, 4, 5))
    b.add_activation("tanh", "TANH", "image", "tanh")
    b.add_stack("stack", ["image", "tanh"], "stack", axis=-2)                   # (1, 3, 4, 2, 5)
    b.add_reverse("reverse", "stack", "reversed", reverse_dim=[True, False, True, False, True])
    b.add_tile("tile", "reversed", "tiled", reps=[2, 1, 1, 3])
    b.add_load_constant_nd("indices", "indices", np.float32([[4, 0], [-1, 2]]), (2, 2))
    b.add_gather("out", ["tiled", "indices"], "out", axis=-1)
    checked(b)


@pytest.mark.parametrize("mode", ["SPACE_TO_DEPTH", "DEPTH_TO_SPACE", "PIXEL_SHUFFLE"])
def test_reorganize_data(mode):
    b = network((3, 4, 6), rank_n=False)
    if mode == "SPACE_TO_DEPTH":
        b.add_reorganize_data("out", "image", "out", mode, block_size=2)
    else:
        b.add_convolution("conv", 3, 8, 1, 1, 1, 1, "valid", 1, rand(1, 1, 3, 8), None, False,
                          input_name="image", output_name="conv")
        b.add_reorganize_data("out", "conv", "out", mode, block_size=2)
    checked(b)


def test_crop_by_amounts_and_to_a_reference():
    b = network((3, 7, 8), rank_n=False)
    b.add_crop("amounts", 1, 2, 2, 1, [0, 0], ["image"], "amounts")                  # (3, 4, 5)
    b.add_pooling("ref", 2, 2, 2, 2, "MAX", "VALID", "image", "ref")                 # (3, 3, 4)
    b.add_crop("reference", 0, 0, 0, 0, [1, 2], ["image", "ref"], "reference")         # (3, 3, 4) at (1, 2)
    b.add_flatten("flat_a", 0, "amounts", "flat_a")
    b.add_flatten("flat_r", 0, "reference", "flat_r")
    b.add_elementwise("out", ["flat_a", "flat_r"], "out", "CONCAT")
    checked(b)


def test_broadcasts_and_fills():
    b = network((3, 1, 5))
    b.add_broadcast_to_static("wide", "image", "wide", (2, 3, 4, 5))
    b.add_fill_like("fill", "image", "fill", value=0.5)
    b.add_add_broadcastable("out", ["wide", "fill"], "out")
    checked(b)


# -- reductions and softmax -----------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["sum", "avg", "prod", "logsum", "sumsquare", "L1", "L2", "max", "min", "argmax"])
def test_rank5_reduce(mode):
    b = network((3, 2, 3), rank_n=False)
    axes = {"argmax": "W", "prod": "HW", "max": "C", "min": "H"}.get(mode, "CHW")
    b.add_reduce("reduce", "image", "out", axes, mode, epsilon=1e-3)
    checked(b, **({"bias": (0.01, 0.01, 0.01)} if mode == "logsum" else {}))


@pytest.mark.parametrize("kind", ["sum", "mean", "prod", "max", "min", "l1", "l2", "sumsquare", "logsum",
                                  "logsumexp"])
def test_rank_n_reductions(kind):
    b = network((3, 4, 5))
    options = {"sum": dict(axes=[1, -1], keepdims=False), "prod": dict(axes=[2], keepdims=True),
               "logsum": dict(axes=[-1, -2], keepdims=False), "logsumexp": dict(reduce_all=True, keepdims=False)}
    getattr(b, f"add_reduce_{kind}")(kind, "image", "out", **options.get(kind, dict(axes=[-2], keepdims=True)))
    checked(b, **({"bias": (0.01, 0.01, 0.01)} if kind == "logsum" else {}))


def test_argmax_argmin_softmax_and_softmax_nd():
    b = network((3, 4, 5))
    b.add_argmax("argmax", "image", "argmax", axis=-1, keepdims=False)
    b.add_argmin("argmin", "image", "argmin", axis=1, keepdims=True)
    b.add_softmax_nd("softmax_nd", "image", "softmax_nd", axis=-2)
    b.add_softmax("softmax", "image", "softmax")
    b.add_reshape_static("a", "argmax", "a", (-1,))
    b.add_reshape_static("b", "argmin", "b", (-1,))
    b.add_reshape_static("c", "softmax_nd", "c", (-1,))
    b.add_reshape_static("d", "softmax", "d", (-1,))
    b.add_concat_nd("out", ["a", "b", "c", "d"], "out", axis=0)
    checked(b)


# -- resizing -------------------------------------------------------------------------------------
@pytest.mark.parametrize("factors,mode,linear", [
    ((2, 3), "NN", "DEFAULT"), ((2, 2), "BILINEAR", "DEFAULT"), ((3, 2), "BILINEAR", "ALIGN_CORNERS_TRUE"),
    ((2, 2), "BILINEAR", "ALIGN_CORNERS_FALSE"), ((1.5, 2.5), "BILINEAR", "ALIGN_CORNERS_FALSE")])
def test_upsample(factors, mode, linear):
    b = network((3, 4, 5), rank_n=False)
    b.add_upsample("up", *factors, "image", "out", mode=mode, linear_upsample_mode=linear)
    checked(b)


@pytest.mark.parametrize("mode", ["STRICT_ALIGN_ENDPOINTS_MODE", "ALIGN_ENDPOINTS_MODE", "UPSAMPLE_MODE",
                                  "ROI_ALIGN_MODE"])
def test_resize_bilinear(mode):
    b = network((3, 4, 5), rank_n=False)
    b.add_resize_bilinear("resize", "image", "out", target_height=7, target_width=3, mode=mode)
    checked(b)


# -- recurrent layers -----------------------------------------------------------------------------
def _sequence_network(seq: int, batch: int) -> NeuralNetworkBuilder:
    """A grayscale image (1, 4, 6) read as `seq` steps of `batch` rows of 24 / (seq * batch) values."""
    b = network((1, 4, 6))
    b.add_reshape_static("steps", "image", "steps", (seq, batch, 24 // (seq * batch), 1, 1))
    return b


def _gates(count: int, rows: int, cols: int) -> list:
    return [rand(rows, cols, scale=0.5) for _ in range(count)]


@pytest.mark.parametrize("options", [dict(), dict(output_all=True, reverse_input=True, forget_bias=True),
                                     dict(output_all=True, peep=True, coupled_input_forget_gate=True,
                                          cell_clip_threshold=0.5, inner_activation="SIGMOID_HARD")])
def test_unidirectional_lstm(options):
    b = _sequence_network(4, 2)
    if options.pop("peep", False):
        options["peep"] = [rand(5) for _ in range(3)]
    b.add_unilstm("lstm", _gates(4, 5, 5), _gates(4, 5, 3), [rand(5) for _ in range(4)], 5, 3, ["steps"],
                  ["out", "h", "c"], **options)
    checked(b)


def test_bidirectional_lstm_gru_and_simple_rnn_with_their_states():
    b = _sequence_network(6, 1)
    b.add_bidirlstm("bi", _gates(4, 3, 3), _gates(4, 3, 4), [rand(3) for _ in range(4)], _gates(4, 3, 3),
                    _gates(4, 3, 4), [rand(3) for _ in range(4)], 3, 4, ["steps"], ["bi", "hf", "cf", "hb", "cb"],
                    output_all=True)
    b.add_gru("gru", _gates(3, 5, 5), _gates(3, 5, 6), [rand(5) for _ in range(3)], 5, 6, ["bi"], ["gru", "h"],
              output_all=True, reverse_input=True)
    b.add_simple_rnn("rnn", rand(5, 5, scale=0.5), rand(5, 5), rand(5), 5, 5, "TANH", ["gru", "h"], ["rnn", "rnn_h"])
    for name in ("hb", "cf", "rnn", "rnn_h"):
        b.add_reshape_static(f"flat_{name}", name, f"flat_{name}", (-1,))
    b.add_concat_nd("out", ["flat_hb", "flat_cf", "flat_rnn", "flat_rnn_h"], "out", axis=0)
    checked(b)


# -- whole classifiers through `kerasml convert --format aimodel` ---------------------------------
def _converted(spec, folder: Path, n: int = 6):
    """(labels, Core AI probabilities, kerasml's probabilities) for `spec` saved as an .mlmodel and
    converted as `kerasml convert MODEL.mlmodel --format aimodel` converts it."""
    from kerasml.conversion.to_coreai import convert
    from kerasml.coreai.runtime import load_aimodel
    from kerasml.conversion.to_coreml import ConvertOptions

    source = folder / "old.mlmodel"
    source.write_bytes(spec.SerializeToString())
    result = convert(ConvertOptions(model=source, format="aimodel", out=folder / "old.aimodel"),
                     say=lambda *_: None, warn=lambda *_: None)
    images = pixels(spec, n)
    model = load_aimodel(result.path)
    try:
        got = model.predict_probabilities(images)
        labels = model.labels
    finally:
        model.close()
    return labels, got, load_model(source).predict_probabilities(images)


def _tutorial_classifier(labels: list, channels: int, colour: str, bias=(0.0, 0.0, 0.0)):
    """A Keras-1-era classifier as the old converters wrote it (specification version 1, rank-5
    blobs, the image scale in the scaler): conv, batchnorm, ReLU, padding, pooling, two branches
    joined by concat, add and multiply, permute, reshape, flatten, dense, softmax."""
    b = network((channels, 12, 10), rank_n=False, classifier=True)
    b.add_convolution("conv1", channels, 4, 3, 3, 1, 1, "valid", 1, rand(3, 3, channels, 4, scale=0.5), rand(4),
                      True, input_name="image", output_name="conv1")
    b.add_batchnorm("bn", 4, rand(4), rand(4), rand(4, scale=0.1), np.abs(rand(4)) + 0.5, "conv1", "bn")
    b.add_activation("relu", "RELU", "bn", "relu")
    b.add_padding("pad", left=1, right=1, top=1, bottom=1, input_name="relu", output_name="pad")
    b.add_pooling("pool", 2, 2, 2, 2, "MAX", "VALID", "pad", "pool")                    # (4, 6, 5)
    b.add_convolution("conv2", 4, 4, 1, 1, 1, 1, "same", 1, rand(1, 1, 4, 4), None, False, input_name="pool",
                      output_name="conv2")
    b.add_activation("tanh", "TANH", "conv2", "tanh")
    b.add_elementwise("sum", ["pool", "tanh"], "sum", "ADD")
    b.add_elementwise("product", ["pool", "tanh"], "product", "MULTIPLY")
    b.add_elementwise("joined", ["sum", "product"], "joined", "CONCAT")                 # (8, 6, 5)
    b.add_permute("permute", (0, 2, 3, 1), "joined", "permuted")
    b.add_reshape("reshape", "permuted", "reshaped", (1, 30, 8, 1), 0)
    b.add_flatten("flatten", 0, "reshaped", "flat")
    b.add_inner_product("dense", rand(len(labels), 240, scale=0.2), rand(len(labels)), 240, len(labels), True,
                        "flat", "logits")
    b.add_softmax("softmax", "logits", "probabilities")
    b.set_class_labels(labels, predicted_feature_name="classLabel", prediction_blob="probabilities")
    spec = as_image(b, scale=1 / 255, bias=bias, colour=colour)
    spec.specificationVersion = 1
    return spec


def test_spec_v1_tutorial_classifier_with_int64_labels(tmp_path):
    spec = _tutorial_classifier([3, 5, 7, 11], 3, "RGB")
    assert spec.neuralNetworkClassifier.WhichOneof("ClassLabels") == "int64ClassLabels"
    labels, got, want = _converted(spec, tmp_path)
    assert labels == ["3", "5", "7", "11"]       # Core AI has no labels field: kerasml keeps them as text
    np.testing.assert_allclose(got, want, atol=1e-5)
    assert (got.argmax(1) == want.argmax(1)).all()


def test_string_labels_grayscale_classifier(tmp_path):
    spec = _tutorial_classifier(["cat", "dog", "emu"], 1, "GRAYSCALE", bias=(-0.5, 0.0, 0.0))
    labels, got, want = _converted(spec, tmp_path)
    assert labels == ["cat", "dog", "emu"]
    np.testing.assert_allclose(got, want, atol=1e-5)


def test_bgr_model_with_per_channel_biases(tmp_path):
    """The model reads B, G, R, each with its own bias: a dense layer over the raw channels shows any
    channel or bias out of place."""
    spec = _tutorial_classifier(["a", "b"], 3, "BGR", bias=(-1.0, -2.0, -3.0))
    scaler = spec.neuralNetworkClassifier.preprocessing[0].scaler
    assert (scaler.redBias, scaler.greenBias, scaler.blueBias) == (-1.0, -2.0, -3.0)
    labels, got, want = _converted(spec, tmp_path)
    assert labels == ["a", "b"]
    np.testing.assert_allclose(got, want, atol=1e-5)


def test_mean_image_preprocessing():
    b = network((3, 4, 5), rank_n=False)
    b.add_flatten("out", 0, "image", "out")
    spec = as_image(b)
    step = spec.neuralNetwork.preprocessing[0]
    step.ClearField("scaler")
    step.meanImage.meanImage.extend(rand(60, scale=50).tolist())
    images = pixels(spec)
    want = load_model(spec).predict_probabilities(images)
    np.testing.assert_allclose(core_ai(spec, images, list(range(60))), want, atol=1e-4)


# -- refusals -------------------------------------------------------------------------------------
def _refusal(b: NeuralNetworkBuilder) -> str:
    spec = as_image(b)
    load_model(spec)                   # kerasml's runtime runs it: only Core AI cannot
    with pytest.raises(UnsupportedModelError) as caught:
        lower_model(spec, None, labels=[0])
    return str(caught.value)


def test_a_layer_core_ai_cannot_express_is_refused_in_one_line():
    b = network((3, 4, 5))
    b.add_topk("top", ["image"], ["out", "indices"], k=2, axis=-1)
    message = _refusal(b)
    assert message == "layer 'top' has type 'topK', which kerasml cannot express in Core AI"


def test_indices_computed_from_the_image_are_refused_in_one_line():
    b = network((3, 4, 5))
    b.add_load_constant_nd("table", "table", rand(6, 2), (6, 2))
    b.add_unary("ids", "image", "ids", "abs")
    b.add_gather("out", ["table", "ids"], "out", axis=0)
    message = _refusal(b)
    assert "layer 'out' (gather)" in message and "\n" not in message


def test_a_parameter_the_lowering_does_not_know_is_refused_by_name():
    b = network((3, 1, 1), rank_n=False)
    b.add_inner_product("dense", rand(2, 3), None, 3, 2, False, "image", "out")
    b.spec.neuralNetwork.layers[0].innerProduct.int8DynamicQuantize = True
    spec = as_image(b)
    with pytest.raises(UnsupportedModelError) as caught:
        lower_model(spec, None, labels=[0, 1])
    assert str(caught.value) == ("layer 'dense' (innerProduct) has parameter 'int8DynamicQuantize', which kerasml's "
                                 "Core AI lowering of it does not know")
