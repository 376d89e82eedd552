"""ML Program ops that decompress weights (`constexpr_*`): always on constants, so the engine
evaluates them once at load. Registered in `mil_ops.OPS` like every other op."""

from __future__ import annotations

import numpy as np

from kerasml.runtime.mil_ops import Args, op
from kerasml.runtime.mil_values import unpack_bits


def _per_axis(values: np.ndarray, rank: int, axis: int) -> np.ndarray:
    values = np.asarray(values, dtype=np.float32)
    if values.ndim == rank or values.size == 1:
        return values
    shape = [1] * rank
    shape[axis % rank] = -1
    return values.reshape(shape)


@op("constexpr_affine_dequantize")
def constexpr_affine_dequantize(args: Args) -> list:
    data = args.get("quantized_data")
    axis = int(args.scalar("axis", 0))
    zero = _per_axis(args.get("zero_point"), data.ndim, axis)
    scale = _per_axis(args.get("scale"), data.ndim, axis)
    return [(data.astype(np.float32) - zero) * scale]


def _blockwise(param: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Repeat a per-block parameter (same rank, each size dividing the data's) up to `shape`."""
    param = np.asarray(param, dtype=np.float32)
    if param.ndim != len(shape) or any(s % p for s, p in zip(shape, param.shape)):
        raise ValueError(f"block parameters of shape {param.shape} do not tile data of shape {shape}")
    for axis, (s, p) in enumerate(zip(shape, param.shape)):
        if s != p:
            param = np.repeat(param, s // p, axis=axis)
    return param


@op("constexpr_blockwise_shift_scale")
def constexpr_blockwise_shift_scale(args: Args) -> list:
    data = args.get("data").astype(np.float32)
    offset = args.get("offset", None)
    if offset is not None:
        data = data - _blockwise(offset, data.shape)
    return [data * _blockwise(args.get("scale"), data.shape)]


@op("constexpr_cast")
def constexpr_cast(args: Args) -> list:
    return [args.get("source_val").astype(np.float32)]


@op("constexpr_lut_to_dense")
def constexpr_lut_to_dense(args: Args) -> list:
    lut, indices = args.get("lut"), args.get("indices")
    if args.has("shape"):  # iOS 16: one flat table, indices packed into bytes
        shape = tuple(args.ints("shape"))
        nbits = int(np.log2(lut.shape[0]))
        count = int(np.prod(shape))
        flat = indices if nbits == 8 else unpack_bits(indices, nbits, count, signed=False)
        return [lut[flat[:count].astype(np.int64)].reshape(shape)]
    # iOS 18: lut is (*blocks, palette size, vector size); one table per block of the output
    if lut.ndim != indices.ndim + 2 or lut.shape[-1] != 1:
        raise args.unsupported("vector palettization")
    shape = indices.shape
    if any(s % b for s, b in zip(shape, lut.shape)):
        raise ValueError(f"palettes of shape {lut.shape} do not tile weights of shape {shape}")
    block_index = np.ix_(*[np.arange(s) // (s // b) for s, b in zip(shape, lut.shape)])
    return [lut[block_index + (indices.astype(np.int64), 0)]]
