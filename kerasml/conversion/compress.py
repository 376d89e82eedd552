"""Smaller Core ML models: the weight-compression schemes `convert --precision` offers
(model/precision.py's table), applied through `coremltools.optimize` (and, for the NeuralNetwork
format, coremltools' own weight quantizer).

`apply` compresses a converted, uncompressed MLModel. Magnitude pruning (`--sparsity`) combines with
every ML Program scheme through coremltools' joint compression (iOS 18), which stores the pruned
weights as sparse and the rest palettized or quantized.
"""

from __future__ import annotations

import numpy as np

from kerasml.errors import KerasmlError
from kerasml.model.precision import WEIGHT_THRESHOLD, scheme

def apply(mlmodel, fmt: str, precision: str, sparsity: float | None = None,
          calibration: np.ndarray | None = None, notes: list[str] | None = None):
    """The compressed model (or `mlmodel` itself for fp32). `calibration`: uint8 images (N, H, W, C)
    for w8a8. Notes about tensors left uncompressed go to `notes`."""
    from kerasml.libs import quiet_output

    chosen = scheme(precision)
    notes = notes if notes is not None else []
    if fmt == "mlmodel":
        if chosen.nn_quantize is None:
            return mlmodel
        from coremltools.models.neural_network import quantization_utils
        arguments = dict(chosen.nn_quantize)
        if arguments.get("quantization_mode") == "custom_lut":
            arguments["lut_function"] = _kmeans_table
        if chosen.weight_threshold > WEIGHT_THRESHOLD:  # palette4: small convolutions stay float here too
            arguments["selector"] = quantization_utils.AdvancedQuantizedLayerSelector(
                minimum_conv_kernel_channels=1, minimum_conv_weight_count=chosen.weight_threshold)
        with quiet_output():
            return quantization_utils.quantize_weights(mlmodel, **arguments)
    import coremltools.optimize.coreml as cto

    from kerasml.conversion.short_names import shortened

    uncompressed = mlmodel
    joint = False
    if sparsity is not None:
        config = cto.OpMagnitudePrunerConfig(target_sparsity=float(sparsity), weight_threshold=WEIGHT_THRESHOLD)
        with quiet_output():
            mlmodel = cto.prune_weights(mlmodel, cto.OptimizationConfig(global_config=config))
        joint = True
    if chosen.activations:
        if calibration is None or not len(calibration):
            raise KerasmlError(f"--precision {precision} needs calibration images; pass --data PATH")
        mlmodel = _quantize_activations(mlmodel, calibration)
    if chosen.program_config is not None:
        config = cto.OptimizationConfig(global_config=chosen.program_config(cto))
        compressor = cto.palettize_weights if chosen.kind == "palette" else cto.linear_quantize_weights
        with quiet_output():
            mlmodel = compressor(mlmodel, config, joint_compression=joint)
            for fallback in chosen.fallbacks if not joint else ():
                # e.g. 32 input channels cannot split into blocks of 64; palette4's tensors under 1,024 values
                if _float_weights(mlmodel, WEIGHT_THRESHOLD):
                    mlmodel = compressor(mlmodel, cto.OptimizationConfig(global_config=fallback(cto)))
    untouched = _float_weights(mlmodel, chosen.weight_threshold)
    if precision not in ("fp32", "fp16") and not (_program_op_types(mlmodel) & COMPRESSED_OPS):
        notes.append(f"note: no weight tensor has {chosen.weight_threshold} or more values, so {precision} left "
                     "the weights as they were")
    elif untouched and precision not in ("fp32", "fp16"):
        notes.append(f"note: {len(untouched)} weight tensor(s) stay float ({', '.join(untouched[:3])}"
                     f"{', ...' if len(untouched) > 3 else ''}): fewer than {chosen.weight_threshold} values, or a "
                     f"shape {precision} cannot split into blocks or groups")
    # The compressing passes name their new weights after the old ones ("..._palettized").
    return mlmodel if mlmodel is uncompressed else shortened(mlmodel)


def _quantize_activations(mlmodel, images: np.ndarray):
    """coremltools' activation quantization, with the activation ranges measured by kerasml's runtime:
    coremltools measures them by running the model through Core ML, which only macOS has."""
    from unittest import mock

    import coremltools.optimize.coreml as cto
    from coremltools.optimize.coreml import _post_training_quantization as passes

    from kerasml.libs import quiet_output

    if not hasattr(passes, "_get_activation_calibration_stats"):
        raise KerasmlError("this coremltools has no activation calibration step kerasml can feed; "
                           "use --precision int8 (weights only)")
    ranges = activation_ranges(mlmodel, images)
    config = cto.OptimizationConfig(global_config=cto.OpLinearQuantizerConfig(mode="linear_symmetric"))
    samples = [{mlmodel.get_spec().description.input[0].name: image} for image in images]
    with mock.patch.object(passes, "_get_activation_calibration_stats", lambda *args: ranges), quiet_output():
        return cto.linear_quantize_activations(mlmodel, config, samples)


def activation_ranges(mlmodel, images: np.ndarray) -> dict[str, dict[str, float]]:
    """{tensor: {"rmin", "rmax"}} over all `images` for the input and every computed float tensor
    (what coremltools' calibration records), from kerasml's runtime."""
    from kerasml.runtime import load_model

    model = load_model(mlmodel)
    engine = model._engine  # the ML Program's steps name every intermediate tensor
    names = [name for step in engine.steps for name, dtype in zip(step.outputs, step.dtypes)
             if dtype is not None and np.dtype(dtype).kind == "f"]
    ranges = {model.input_name: {"rmin": float(images.min()), "rmax": float(images.max())}}
    pixels = model._pixels_nchw(np.asarray(images), model.image)
    for start in range(0, len(pixels), 64):
        values = model._run({model.input_name: pixels[start:start + 64]}, names)
        for name, value in values.items():
            low, high = float(value.min()), float(value.max())
            seen = ranges.setdefault(name, {"rmin": low, "rmax": high})
            seen["rmin"], seen["rmax"] = min(seen["rmin"], low), max(seen["rmax"], high)
    for seen in ranges.values():
        # A tensor that was zero on every image (a dead channel group, an fp16 underflow) would get
        # scale 0, which coremltools refuses: a tiny symmetric range quantizes its zeros to zero.
        if max(abs(seen["rmin"]), abs(seen["rmax"])) < 1e-6:
            seen["rmin"], seen["rmax"] = -1e-3, 1e-3
    return ranges


COMPRESSED_OPS = {"constexpr_lut_to_dense", "constexpr_affine_dequantize", "constexpr_blockwise_shift_scale",
                  "constexpr_sparse_to_dense"}


def _program_op_types(mlmodel) -> set[str]:
    spec = mlmodel.get_spec()
    if spec.WhichOneof("Type") != "mlProgram":
        return set(COMPRESSED_OPS)      # NeuralNetwork weights are quantized whatever their size
    function = spec.mlProgram.functions["main"]
    return {op.type for op in function.block_specializations[function.opset].operations}


def _float_weights(mlmodel, threshold: int = WEIGHT_THRESHOLD) -> list[str]:
    """Names of the float constants of `threshold`+ values still read by conv/linear/matmul ops."""
    spec = mlmodel.get_spec()
    if spec.WhichOneof("Type") != "mlProgram":
        return []
    function = spec.mlProgram.functions["main"]
    block = function.block_specializations[function.opset]
    sizes = {}
    for op in block.operations:
        if op.type == "const":
            value = op.attributes["val"]
            shape = value.type.tensorType.dimensions
            count = int(np.prod([d.constant.size for d in shape])) if shape else 1
            sizes[op.outputs[0].name] = count
    found = []
    for op in block.operations:
        if op.type in ("conv", "linear", "matmul", "conv_transpose"):
            for param in ("weight", "y"):
                for binding in op.inputs[param].arguments if param in op.inputs else ():
                    if sizes.get(binding.name, 0) >= threshold:
                        found.append(binding.name)
    return found


def _kmeans_table(nbits: int, weight: np.ndarray):
    """NeuralNetwork palettes: coremltools' k-means, with its table flattened. Its own `kmeans_lut`
    mode passes the (entries, 1) table it now returns straight to protobuf, which refuses arrays."""
    from coremltools.models.neural_network.quantization_utils import _get_kmeans_lookup_table_and_weight

    table, indices = _get_kmeans_lookup_table_and_weight(nbits, weight)
    return np.asarray(table, dtype=np.float32).reshape(-1), indices


