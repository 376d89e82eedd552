"""Compression schemes (kerasml/conversion/compress.py): each one stores its weights compressed, kerasml's runtime
runs it within the scheme's tolerance of the fp32 model, and bad combinations are one clear line."""

from __future__ import annotations

import numpy as np
import pytest

from kerasml.conversion import auto_precision, compress
from kerasml.model import precision as schemes
from kerasml.errors import KerasmlError

# Ops that must appear in the ML Program for each scheme (with --sparsity 0.3 where the key has it).
PROGRAM_OPS = {
    ("int8", None): {"constexpr_blockwise_shift_scale"},    # iOS 18's op; iOS 16 has affine_dequantize
    ("palette8", None): {"constexpr_lut_to_dense"},
    ("palette6", None): {"constexpr_lut_to_dense"},
    ("palette4", None): {"constexpr_lut_to_dense"},
    ("palette2", None): {"constexpr_lut_to_dense"},
    ("int4", None): {"constexpr_blockwise_shift_scale"},
    ("w8a8", None): {"quantize", "dequantize", "constexpr_blockwise_shift_scale"},
    ("fp32", 0.3): {"constexpr_sparse_to_dense"},
    ("palette4", 0.3): {"constexpr_lut_to_sparse", "constexpr_sparse_to_dense"},
    ("int8", 0.3): {"constexpr_sparse_blockwise_shift_scale", "constexpr_sparse_to_dense"},
}
NN_QUANTIZATION = {"fp16": None, "int8": "linearQuantization", "palette8": "lookupTableQuantization",
                   "palette6": "lookupTableQuantization", "palette4": "lookupTableQuantization",
                   "palette2": "lookupTableQuantization"}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A two-convolution digit model trained for three epochs on 4,000 bundled digits, with 400 more
    digits to compare on, and its uncompressed conversions."""
    import keras

    from kerasml.conversion.to_coreml import convert_keras_model
    from kerasml.data.sources import load_mnist_sample

    sample = load_mnist_sample()
    order = np.random.default_rng(0).permutation(len(sample["y_train"]))  # the sample is sorted by class
    x, y = sample["x_train"].reshape(-1, 28, 28, 1)[order], sample["y_train"][order]
    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input((28, 28, 1)),
        keras.layers.Conv2D(16, 3, activation="relu"), keras.layers.MaxPooling2D(2),
        keras.layers.Conv2D(32, 3, activation="relu"), keras.layers.MaxPooling2D(2),
        keras.layers.Flatten(), keras.layers.Dense(10, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.fit(x[:4000] / 255.0, y[:4000], epochs=3, batch_size=64, verbose=0)
    path = tmp_path_factory.mktemp("tiny") / "tiny.keras"
    model.save(path)
    converted = {("mlmodel", False): convert_keras_model(model, "mlmodel"),
                 ("mlpackage", False): convert_keras_model(model, "mlpackage", min_target="iOS18"),
                 ("mlpackage", True): convert_keras_model(model, "mlpackage", "fp16", min_target="iOS18")}
    return {"keras": path, "converted": converted, "images": x[4000:4400], "labels": y[4000:4400],
            "calibration": x[:128]}


def _saved(model, folder, name):
    from kerasml.files import path_size
    from kerasml.runtime import load_model

    path = folder / name
    model.save(str(path))
    return load_model(path), path_size(path)


def _program_ops(model) -> set[str]:
    spec = model.get_spec()
    function = spec.mlProgram.functions["main"]
    return {op.type for op in function.block_specializations[function.opset].operations}


def _within_tolerance(compressed, reference, images, precision, sparsity):
    """verify's checks: every probability within atol, and the agreed share of the images whose
    best class leads the next by more than atol (near-ties say nothing)."""
    atol, agreement = schemes.tolerance(precision, sparsity)
    actual, expected = compressed.predict_probabilities(images), reference.predict_probabilities(images)
    assert np.abs(actual - expected).max() <= atol
    top2 = np.sort(expected, axis=1)[:, -2:]
    decisive = top2[:, 1] - top2[:, 0] > atol
    assert decisive.sum() > len(images) / 2
    assert (actual.argmax(axis=1) == expected.argmax(axis=1))[decisive].mean() >= agreement


@pytest.mark.slow
@pytest.mark.parametrize("precision,sparsity", list(PROGRAM_OPS))
def test_ml_program_schemes_store_compressed_weights_the_runtime_runs(tiny, tmp_path, precision, sparsity):
    base = tiny["converted"][("mlpackage", schemes.computes_in_fp16(precision))]
    notes: list[str] = []
    model = compress.apply(base, "mlpackage", precision, sparsity=sparsity, calibration=tiny["calibration"],
                           notes=notes)
    assert PROGRAM_OPS[(precision, sparsity)] <= _program_ops(model)
    reference, reference_size = _saved(base, tmp_path, "reference.mlpackage")
    compressed, size = _saved(model, tmp_path, "compressed.mlpackage")
    if precision != "w8a8":  # its quantize/dequantize ops outweigh 5,000 weights' savings in so small a model
        assert size < reference_size * (0.6 if precision != "fp32" else 0.9)
    _within_tolerance(compressed, reference, tiny["images"], precision, sparsity)


@pytest.mark.slow
@pytest.mark.parametrize("precision", list(NN_QUANTIZATION))
def test_neural_network_schemes_quantize_each_weight(tiny, tmp_path, precision):
    base = tiny["converted"][("mlmodel", False)]
    model = compress.apply(base, "mlmodel", precision)
    kinds, small = set(), set()
    for layer in model.get_spec().neuralNetworkClassifier.layers:
        if layer.WhichOneof("layer") in ("convolution", "innerProduct"):
            weights = getattr(layer, layer.WhichOneof("layer")).weights
            kind = (weights.quantization.WhichOneof("QuantizationType") if weights.rawValue else
                    "float16" if weights.float16Value else "float32")
            if kind == "float32":   # palette4 and palette2 keep small convolutions float
                small.add((layer.WhichOneof("layer"), len(weights.floatValue)))
            else:
                kinds.add(kind)
    assert kinds == {NN_QUANTIZATION[precision] or "float16"}
    if precision in ("palette4", "palette2"):
        assert small == {("convolution", 144)}   # the first convolution's 3x3x1x16 weights
    else:
        assert not small
    reference, reference_size = _saved(base, tmp_path, "reference.mlmodel")
    compressed, size = _saved(model, tmp_path, "compressed.mlmodel")
    assert size < reference_size * 0.6
    _within_tolerance(compressed, reference, tiny["images"], precision, None)


@pytest.mark.slow
def test_w8a8_calibrates_every_activation_with_the_runtime(tiny):
    base = tiny["converted"][("mlpackage", True)]
    ranges = compress.activation_ranges(base, tiny["calibration"])
    assert ranges["image"] == {"rmin": float(tiny["calibration"].min()), "rmax": float(tiny["calibration"].max())}
    assert all(r["rmin"] <= r["rmax"] for r in ranges.values()) and len(ranges) > 5


@pytest.mark.slow
def test_auto_keeps_the_smallest_scheme_within_the_budget(tiny):
    base = tiny["converted"][("mlpackage", False)]
    chosen, model, trials = auto_precision.choose(base, "mlpackage", tiny["images"], tiny["labels"], max_drop=1.0,
                                            target="iOS18", say=lambda line: None)
    kept = [t for t in trials if t.kept]
    assert len(kept) == 1 and kept[0].precision.split(" ")[0] == chosen and kept[0].drop_points <= 1.0
    uniform = [t for t in trials[1:] if "+" not in t.precision]      # smallest first, up to the first within
    assert all(t.drop_points > 1.0 for t in uniform[:-1]) and uniform[-1].drop_points <= 1.0
    # a per-layer mix (smaller scheme where it costs least) is kept only when smaller than that one
    assert kept[0].size_bytes <= uniform[-1].size_bytes < trials[0].size_bytes
    assert all(part in auto_precision.auto_candidates("mlpackage", "iOS18") for part in chosen.split("+"))
    assert "int4" not in auto_precision.auto_candidates("mlpackage", "iOS16")


@pytest.mark.slow
def test_small_weights_stay_float_with_a_note(tiny):
    import keras

    from kerasml.conversion.to_coreml import convert_keras_model

    small = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.AveragePooling2D(7),
                              keras.layers.Flatten(), keras.layers.Dense(10, activation="softmax")])
    assert small.layers[-1].count_params() < schemes.WEIGHT_THRESHOLD
    notes: list[str] = []
    model = convert_keras_model(small, "mlpackage", "palette4", notes=notes)
    assert "constexpr_lut_to_dense" not in _program_ops(model)
    assert notes == [f"note: no weight tensor has {schemes.PALETTE4_THRESHOLD} or more values, so palette4 left "
                     "the weights as they were"]


@pytest.mark.parametrize("fmt,precision,sparsity,has_data,max_drop,message", [
    ("mlmodel", "int4", None, False, None, "add --format mlpackage"),
    ("mlmodel", "w8a8", None, True, None, "add --format mlpackage"),
    ("mlpackage", "w8a8", None, False, None, "pass --data PATH"),
    ("mlpackage", "palette4", 1.0, False, None, "between 0 and 1"),
    ("mlpackage", "palette4", 0.0, False, None, "between 0 and 1"),
    ("mlmodel", "palette4", 0.5, False, None, "add --format mlpackage"),
    ("mlpackage", "auto", None, False, None, "pass --max-drop"),
    ("mlpackage", "int8", None, False, 0.2, "goes with --precision auto"),
    ("mlpackage", "palette5", None, False, None, "use fp32, fp16, int8"),
])
def test_bad_combinations_are_one_line(fmt, precision, sparsity, has_data, max_drop, message):
    with pytest.raises(KerasmlError) as error:
        schemes.check(fmt, precision, sparsity, has_data, max_drop)
    assert message in str(error.value) and "\n" not in str(error.value)


def test_an_old_target_is_refused_for_new_ops():
    with pytest.raises(KerasmlError, match="needs --min-target iOS18"):
        schemes.check_target("iOS16", "int4")
    with pytest.raises(KerasmlError, match="needs --min-target iOS18"):
        schemes.check_target("iOS17", "palette4", 0.5)
    schemes.check_target("iOS16", "palette4")


@pytest.mark.slow
def test_convert_measures_the_fp32_size_once_and_verify_uses_the_scheme_tolerance(tiny, tmp_path):
    from kerasml.conversion.to_coreml import ConvertOptions, convert
    from kerasml.checks.verify import verify

    out = tmp_path / "tiny.mlpackage"
    result = convert(ConvertOptions(model=tiny["keras"], out=out, format="mlpackage", precision="palette6",
                                    labels="digits"), say=lambda line: None, warn=lambda line: None)
    assert result.precision == "palette6" and result.reference_precision == "fp32"
    assert result.size_bytes < 0.7 * result.fp32_size_bytes  # the program itself is half of so small a model
    checked = verify(out, tiny["keras"], samples=200)
    assert checked.precision == "palette6" and checked.atol == schemes.tolerance("palette6")[0]
    assert "for palette6 weights" in next(c.detail for c in checked.checks if c.name == "values")


@pytest.mark.slow
def test_palette4_gives_small_tensors_a_64_entry_table_and_int4_blocks_of_48(tmp_path):
    """A first convolution of 288 weights is too small for 16 levels: in an ML Program it gets 64
    (not float); 48 input values form one int4 block rather than three blocks of 16."""
    import keras

    from kerasml.conversion.to_coreml import convert_keras_model

    keras.utils.set_random_seed(1)
    model = keras.Sequential([keras.Input((28, 28, 1)),
                              keras.layers.Conv2D(32, 3, activation="relu"),           # 288 weights
                              keras.layers.Conv2D(48, 3, strides=2, activation="relu"),  # 13,824
                              keras.layers.GlobalAveragePooling2D(),
                              keras.layers.Dense(64, activation="relu"),                 # 48 inputs
                              keras.layers.Dense(10, activation="softmax")])

    def constexpr_shapes(mlmodel, op_type, name):
        spec = mlmodel.get_spec()
        function = spec.mlProgram.functions["main"]
        block = function.block_specializations[function.opset]
        consts = {op.outputs[0].name: op.attributes["val"] for op in block.operations if op.type == "const"}
        shapes = []
        for op in block.operations:
            if op.type == op_type:   # the table or scale: an attribute (iOS 16) or a const input (iOS 18)
                if name in op.attributes:
                    value = op.attributes[name]
                else:
                    binding = op.inputs[name].arguments[0]
                    value = consts[binding.name] if binding.WhichOneof("binding") == "name" else binding.value
                shapes.append(tuple(d.constant.size for d in value.type.tensorType.dimensions))
        return shapes

    palette = convert_keras_model(model, "mlpackage", "palette4")
    tables = sorted(int(np.prod(shape)) for shape in constexpr_shapes(palette, "constexpr_lut_to_dense", "lut"))
    assert tables == [16, 16, 64, 64]   # 288 and 640 weights at 6 bits, 13,824 and 3,072 at 4
    runtime_model, _ = _saved(palette, tmp_path, "palette4.mlpackage")
    images = np.random.default_rng(0).integers(0, 256, (8, 28, 28, 1), dtype=np.uint8)
    reference, _ = _saved(convert_keras_model(model, "mlpackage"), tmp_path, "fp32.mlpackage")
    assert np.abs(runtime_model.predict_probabilities(images) - reference.predict_probabilities(images)).max() < 0.5

    int4 = convert_keras_model(model, "mlpackage", "int4", min_target="iOS18")
    scales = constexpr_shapes(int4, "constexpr_blockwise_shift_scale", "scale")
    assert (1, 64) in scales, scales          # Dense(64) on 48 inputs ([48, 64]): one block of 48, not 3 of 16
