"""iOS 17's quantize and dequantize ops (ops/defs/iOS17/quantization_ops.py):
quantized = clip(round(x / scale) + zero_point) to the output type's range, rounding half to
even; dequantized = (q - zero_point) * scale. Per-tensor (scalar) or per-axis parameters."""

from __future__ import annotations

import numpy as np

from kerasml.runtime.mil.args import Args
from kerasml.runtime.mil.per_prediction import per_prediction
from kerasml.runtime.registry import CONST, IOS17, MIL_OPS, OPTIONAL_CONST, TENSOR, InputSpec

DEQUANTIZE = InputSpec(input=TENSOR, zero_point=OPTIONAL_CONST, scale=CONST, axis=OPTIONAL_CONST)

_RANGES = {"int8": (-128, 127), "uint8": (0, 255)}


def _along(args: Args, name: str, x: np.ndarray, default=None) -> np.ndarray:
    value = args.get(name, default)
    if value is None:
        return None
    value = np.asarray(value, np.float32)
    if value.ndim == 0 or value.size == 1:
        return value.reshape(())
    axis = int(args.scalar("axis")) % x.ndim
    shape = [1] * x.ndim
    shape[axis] = -1
    return value.reshape(shape)


@MIL_OPS.register("quantize", opset=IOS17, inputs=DEQUANTIZE.but(output_dtype=CONST))
@per_prediction
def quantize(args: Args) -> list:
    x = np.asarray(args.f32("input"), np.float32)
    dtype = str(args.scalar("output_dtype"))
    if dtype not in _RANGES:
        raise args.unsupported(f"output_dtype '{dtype}'")
    q = np.round(x / _along(args, "scale", x))
    zero = _along(args, "zero_point", x)
    if zero is not None:
        q = q + zero
    return [np.clip(q, *_RANGES[dtype]).astype(dtype)]


@MIL_OPS.register("dequantize", opset=IOS17, inputs=DEQUANTIZE)
@per_prediction
def dequantize(args: Args) -> list:
    q = np.asarray(args.get("input")).astype(np.float32)
    zero = _along(args, "zero_point", q)
    if zero is not None:
        q = q - zero
    return [q * _along(args, "scale", q)]
