"""The precisions kerasml speaks of, in one table: the weight-compression schemes `convert
--precision` offers (fp32, fp16, int8, palette8/6/4/2, int4, w8a8, with --sparsity), and the tolerance
`kerasml verify` allows each against Keras.

`SCHEMES` has one entry per scheme: the formats that can store it, the oldest iOS that runs it (ML
Program), whether the program computes in float16, the coremltools configuration that makes it
(applied by conversion/compress.py) and its tolerance. A model converted by kerasml records its
scheme (`label`, read back by `parse_label`); any other model is judged by how its weights are
stored (`stored_scheme`: the runtime's float32 / float16 / int8 / int4 / lut, each one of these
schemes). Nothing here imports coremltools: the configurations take its module as an argument.
"""

from __future__ import annotations

import dataclasses
from typing import Callable


from kerasml.errors import KerasmlError

WEIGHT_THRESHOLD = 256    # tensors with fewer values stay float (a few hundred bytes)
# palette4: 16 levels are too coarse for a tensor this small, such as a first convolution's few
# 3x3 filters (the digit model's 288 first-layer weights alone cost 0.7 points palettized); in an
# ML Program they get a 64-entry table instead (a NeuralNetwork stores them float).
PALETTE4_THRESHOLD = 1024
# int4: one scale per 64 input values; where 64 does not divide the input channels, the largest of
# these that does (48 first: widths like 48, 96 or 3x3x96 = 864 would otherwise fall to blocks of
# 16 or 32, and their scales cost a quarter of the 4-bit weights' size).
BLOCK_SIZES = (64, 48, 32, 16, 8)
CALIBRATION_IMAGES = 256   # w8a8: images whose activation ranges set the 8-bit activation scales
TARGET_ORDER = ("iOS15", "iOS16", "iOS17", "iOS18")


@dataclasses.dataclass(frozen=True)
class Scheme:
    name: str
    what: str
    formats: tuple[str, ...]                  # "mlmodel" (NeuralNetwork), "mlpackage" (ML Program)
    min_target: str                           # oldest iOS that runs it as an ML Program
    bits: int                                 # bits per stored weight, for ordering `auto`
    tolerance: tuple[float, float]            # verify: max |Δ probability|, least top-1 agreement
    program_config: Callable | None = None    # cto module → OpCompressorConfig (ML Program weights)
    fallbacks: tuple[Callable, ...] = ()      # configs for the tensors the first one cannot split
    nn_quantize: dict | None = None           # quantization_utils.quantize_weights arguments (NeuralNetwork)
    computes_in_fp16: bool = False
    activations: bool = False                 # also 8-bit activations, calibrated on images
    kind: str = "float"                       # which coremltools pass stores it: float, linear, palette
    weight_threshold: int = WEIGHT_THRESHOLD  # ML Program tensors with fewer values stay float

    def supports(self, fmt: str) -> bool:
        return fmt in self.formats


def _linear(dtype: str, granularity: str, **extra):
    return lambda cto: cto.OpLinearQuantizerConfig(mode="linear_symmetric", dtype=dtype, granularity=granularity,
                                                   weight_threshold=WEIGHT_THRESHOLD, **extra)


def _palette(nbits: int, threshold: int = WEIGHT_THRESHOLD):
    # One table per tensor: measured on the digit model, tables per group of 16 output channels
    # were 0.5% of the fp32 size larger for no better accuracy, and they need iOS 18 instead of 16.
    return lambda cto: cto.OpPalettizerConfig(mode="kmeans", nbits=nbits, granularity="per_tensor",
                                              weight_threshold=threshold)


def _nn_palette(nbits: int) -> dict:
    # custom_lut: conversion/compress.py gives coremltools its k-means table function
    return {"nbits": nbits, "quantization_mode": "custom_lut"}


SCHEMES = (
    Scheme("fp32", "32-bit float weights", ("mlmodel", "mlpackage"), "iOS15", 32, (1e-5, 1.0)),
    Scheme("fp16", "16-bit float weights and compute", ("mlmodel", "mlpackage"), "iOS15", 16, (5e-3, 0.998),
           nn_quantize={"nbits": 16, "quantization_mode": "linear"}, computes_in_fp16=True),
    Scheme("int8", "8-bit linear weights, one scale per output channel", ("mlmodel", "mlpackage"), "iOS16", 8,
           (5e-2, 0.99), program_config=_linear("int8", "per_channel"),
           nn_quantize={"nbits": 8, "quantization_mode": "linear"}, kind="linear"),
    Scheme("palette8", "256-entry k-means look-up tables", ("mlmodel", "mlpackage"), "iOS16", 8, (0.1, 0.99),
           program_config=_palette(8), nn_quantize=_nn_palette(8), kind="palette"),
    Scheme("palette6", "64-entry k-means look-up tables", ("mlmodel", "mlpackage"), "iOS16", 6, (0.2, 0.98),
           program_config=_palette(6), nn_quantize=_nn_palette(6), kind="palette"),
    Scheme("palette4", "16-entry k-means look-up tables", ("mlmodel", "mlpackage"), "iOS16", 4, (0.5, 0.95),
           program_config=_palette(4, PALETTE4_THRESHOLD), fallbacks=(_palette(6),), nn_quantize=_nn_palette(4),
           kind="palette", weight_threshold=PALETTE4_THRESHOLD),
    # palette2 alone costs most models points; `auto` keeps it on the layers where it costs least
    # (its per-layer mix with palette4, chosen by measuring each layer alone).
    Scheme("palette2", "4-entry k-means look-up tables", ("mlmodel", "mlpackage"), "iOS16", 2, (0.9, 0.8),
           program_config=_palette(2, PALETTE4_THRESHOLD), fallbacks=(_palette(6),), nn_quantize=_nn_palette(2),
           kind="palette", weight_threshold=PALETTE4_THRESHOLD),
    Scheme("int4", f"4-bit linear weights, one scale per block of {BLOCK_SIZES[0]} inputs", ("mlpackage",),
           "iOS18", 4, (0.5, 0.95), program_config=_linear("int4", "per_block", block_size=BLOCK_SIZES[0]),
           fallbacks=tuple(_linear("int4", "per_block", block_size=size) for size in BLOCK_SIZES[1:]),
           kind="linear"),
    Scheme("w8a8", "8-bit weights and 8-bit activations (calibrated on --data)", ("mlpackage",), "iOS17", 8,
           (0.1, 0.98), program_config=_linear("int8", "per_channel"), computes_in_fp16=True, activations=True,
           kind="linear"),
)
BY_NAME = {scheme.name: scheme for scheme in SCHEMES}
NAMES = tuple(BY_NAME) + ("auto",)
# Pruning without fine-tuning changes what the model computes (ambiguous images flip outright), so
# verify lets probabilities move by up to 0.9 and at most half the pruned fraction of its decisive
# predictions change; `convert --data` measures what it costs in accuracy.
SPARSE_ATOL = 0.9
SPARSE_TARGET = "iOS16"        # pruning alone; joined with another scheme it needs iOS 18
JOINT_TARGET = "iOS18"


def scheme(name: str) -> Scheme:
    if name not in BY_NAME:
        raise KerasmlError(f"unknown --precision {name!r}; use {', '.join(NAMES)}")
    return BY_NAME[name]


def check(fmt: str, precision: str, sparsity: float | None = None, has_data: bool = False,
          max_drop: float | None = None) -> None:
    """Refuse, in one line, a combination no format or scheme can do; before any work is done."""
    if precision != "auto":
        chosen = scheme(precision)
        if not chosen.supports(fmt):
            raise KerasmlError(f"--precision {precision} ({chosen.what}) needs an ML Program; "
                               "add --format mlpackage")
        if chosen.activations and not has_data:
            raise KerasmlError(f"--precision {precision} calibrates 8-bit activations on images; "
                               "pass --data PATH to labelled images like the ones the model will see")
    elif max_drop is None:
        raise KerasmlError("--precision auto keeps the smallest scheme within an accuracy budget; "
                           "pass --max-drop POINTS (e.g. --max-drop 0.2)")
    if max_drop is not None and (precision != "auto" or not 0 <= max_drop < 100):
        raise KerasmlError("--max-drop POINTS (0-100) goes with --precision auto" if precision != "auto"
                           else f"--max-drop {max_drop} must be between 0 and 100 accuracy points")
    if sparsity is not None:
        if not 0 < sparsity < 1:
            raise KerasmlError(f"--sparsity {sparsity} must be a fraction between 0 and 1 (e.g. 0.5 "
                               "prunes half the weights)")
        if fmt != "mlpackage":
            raise KerasmlError("--sparsity stores pruned weights as sparse tensors, which only ML Programs "
                               "have; add --format mlpackage")


def required_target(precision: str, sparsity: float | None = None) -> str:
    """The oldest iOS an ML Program compressed this way runs on."""
    base = BY_NAME[precision].min_target if precision in BY_NAME else "iOS15"
    if sparsity is None:
        return base
    joint = precision not in ("fp32", "fp16")
    return _later(base, JOINT_TARGET if joint else SPARSE_TARGET)


def check_target(chosen: str, precision: str, sparsity: float | None = None) -> None:
    needed = required_target(precision, sparsity)
    if chosen in TARGET_ORDER and TARGET_ORDER.index(chosen) < TARGET_ORDER.index(needed):
        what = f"--precision {precision}" + (f" with --sparsity {sparsity:g}" if sparsity else "")
        raise KerasmlError(f"{what} needs --min-target {needed} or later (the ops that store it are "
                           f"newer than {chosen}); raise --min-target or pick another precision")


def _later(a: str, b: str) -> str:
    return max(a, b, key=TARGET_ORDER.index)


def computes_in_fp16(precision: str) -> bool:
    return precision in BY_NAME and BY_NAME[precision].computes_in_fp16


def tolerance(precision: str, sparsity: float | None = None) -> tuple[float, float]:
    atol, agreement = scheme(precision).tolerance
    if sparsity:
        atol, agreement = SPARSE_ATOL, min(agreement, 1 - sparsity / 2)
    return atol, agreement


def label(precision: str, sparsity: float | None = None) -> str:
    return precision + (f"+sparse{sparsity:g}" if sparsity else "")


def parse_label(text: str) -> tuple[str, float | None] | None:
    """`label`'s inverse, for the precision written into a model's metadata; None if not a scheme.
    A per-layer mix ("palette4+palette8", auto_precision) reads as its smaller scheme."""
    name, _, sparse = (text or "").partition("+sparse")
    first, _, other = name.partition("+")
    if other in BY_NAME:
        name = first
    if name not in BY_NAME:
        return None
    try:
        return name, float(sparse) if sparse else None
    except ValueError:
        return None


# How a model stores its weights (the runtime's and inspect's words) → the scheme whose tolerance
# applies to a model kerasml did not compress itself. A look-up table of unknown size is judged as
# palette8; 8-bit raw weights as int8.
STORED_AS = {"float32": "fp32", "float16": "fp16", "int8": "int8", "int4": "int4", "lut": "palette8"}


def stored_scheme(weight_class: str) -> str:
    """The scheme a model's stored weights amount to (palette8 for anything else)."""
    return STORED_AS.get(weight_class, "palette8")
