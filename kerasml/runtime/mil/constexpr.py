"""ML Program ops that decompress weights (`constexpr_*`): always on constants, so the engine
evaluates them once at load. Registered in `registry.MIL_OPS` like every other op; iOS 16's
lut_to_dense and sparse_to_dense (a flat table or bitmask plus the shape) and iOS 18's (blocks of
palettes, a mask of the weight's shape) are two versions of each."""

from __future__ import annotations

import numpy as np

from kerasml.runtime.mil.args import Args
from kerasml.runtime.mil.values import unpack_bits
from kerasml.runtime.registry import CONST, IOS16, IOS18, MIL_OPS, OPTIONAL_CONST, InputSpec


def _per_axis(values: np.ndarray, rank: int, axis: int) -> np.ndarray:
    values = np.asarray(values, dtype=np.float32)
    if values.ndim == rank or values.size == 1:
        return values
    shape = [1] * rank
    shape[axis % rank] = -1
    return values.reshape(shape)


@MIL_OPS.register("constexpr_affine_dequantize", opset=IOS16,
                  inputs=InputSpec(quantized_data=CONST, zero_point=CONST, scale=CONST, axis=CONST))
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


@MIL_OPS.register("constexpr_blockwise_shift_scale", opset=IOS18,
                  inputs=InputSpec(data=CONST, scale=CONST, offset=OPTIONAL_CONST))
def constexpr_blockwise_shift_scale(args: Args) -> list:
    data = args.get("data").astype(np.float32)
    offset = args.get("offset", None)
    if offset is not None:
        data = data - _blockwise(offset, data.shape)
    return [data * _blockwise(args.get("scale"), data.shape)]


@MIL_OPS.register("constexpr_cast", opset=IOS16, inputs=InputSpec(source_val=CONST, output_dtype=CONST))
def constexpr_cast(args: Args) -> list:
    return [args.get("source_val").astype(np.float32)]


@MIL_OPS.register("constexpr_lut_to_dense", opset=IOS16, inputs=InputSpec(indices=CONST, lut=CONST, shape=CONST))
def constexpr_lut_to_dense(args: Args) -> list:
    """iOS 16: one flat table, indices packed into bytes, the weight's shape given."""
    lut, indices = args.get("lut"), args.get("indices")
    shape = tuple(args.ints("shape"))
    nbits = int(np.log2(lut.shape[0]))
    count = int(np.prod(shape))
    flat = indices if nbits == 8 else unpack_bits(indices, nbits, count, signed=False)
    return [lut[flat[:count].astype(np.int64)].reshape(shape)]


@MIL_OPS.register("constexpr_lut_to_dense", opset=IOS18,
                  inputs=InputSpec(indices=CONST, lut=CONST, vector_axis=OPTIONAL_CONST))
def constexpr_lut_to_dense_ios18(args: Args) -> list:
    return [_lut_to_dense(args, args.get("lut"), args.get("indices"))]


def _lut_to_dense(args: Args, lut: np.ndarray, indices: np.ndarray) -> np.ndarray:
    """iOS 18: lut is (*blocks, palette size, vector size), one palette per block of the indices.
    A vector size V > 1 (vector palettization) writes each entry's V values consecutively along
    `vector_axis`, which grows V times."""
    if lut.ndim != indices.ndim + 2:
        raise ValueError(f"a palette of rank {lut.ndim} does not fit indices of rank {indices.ndim}")
    shape = indices.shape
    if any(s % b for s, b in zip(shape, lut.shape)):
        raise ValueError(f"palettes of shape {lut.shape} do not tile weights of shape {shape}")
    block_index = np.ix_(*[np.arange(s) // (s // b) for s, b in zip(shape, lut.shape)])
    vectors = lut[block_index + (indices.astype(np.int64),)]  # shape + (V,)
    size = lut.shape[-1]
    if size == 1:
        return vectors[..., 0]
    axis = int(args.scalar("vector_axis")) % indices.ndim
    out_shape = list(shape)
    out_shape[axis] *= size
    return np.moveaxis(vectors, -1, axis + 1).reshape(out_shape)


def _vector_mask(args: Args, mask: np.ndarray, lut: np.ndarray) -> np.ndarray:
    size = lut.shape[-1]
    if size == 1:
        return mask
    return np.repeat(mask, size, axis=int(args.scalar("vector_axis")) % mask.ndim)


@MIL_OPS.register("constexpr_sparse_to_dense", opset=IOS16, inputs=InputSpec(nonzero_data=CONST, mask=CONST, shape=CONST))
def constexpr_sparse_to_dense(args: Args) -> list:
    """iOS 16: a flat bitmask (one bit per element, least significant first) and the shape."""
    shape = tuple(args.ints("shape"))
    mask = unpack_bits(np.asarray(args.get("mask"), np.uint8), 1, int(np.prod(shape)), signed=False).reshape(shape)
    return [_scattered(args.get("nonzero_data"), mask)]


@MIL_OPS.register("constexpr_sparse_to_dense", opset=IOS18, inputs=InputSpec(nonzero_data=CONST, mask=CONST))
def constexpr_sparse_to_dense_ios18(args: Args) -> list:
    """iOS 18: the mask has the weight's shape."""
    return [_scattered(args.get("nonzero_data"), args.get("mask"))]


def _scattered(data: np.ndarray, mask: np.ndarray) -> np.ndarray:
    dense = np.zeros(mask.shape, dtype=data.dtype)
    dense[mask != 0] = data
    return dense


@MIL_OPS.register("constexpr_lut_to_sparse", opset=IOS18,
                  inputs=InputSpec(indices_mask=CONST, indices_nonzero_data=CONST, lut=CONST, vector_axis=OPTIONAL_CONST))
def constexpr_lut_to_sparse(args: Args) -> list:
    mask, lut = args.get("indices_mask"), args.get("lut")
    indices = np.zeros(mask.shape, np.int64)
    indices[mask != 0] = args.get("indices_nonzero_data")
    out_mask = _vector_mask(args, mask, lut)
    return [out_mask, _lut_to_dense(args, lut, indices)[out_mask != 0]]


@MIL_OPS.register("constexpr_sparse_blockwise_shift_scale", opset=IOS18,
                  inputs=InputSpec(data_mask=CONST, nonzero_data=CONST, scale=CONST, offset=OPTIONAL_CONST))
def constexpr_sparse_blockwise_shift_scale(args: Args) -> list:
    mask = args.get("data_mask")
    data = np.zeros(mask.shape, np.float32)
    data[mask != 0] = args.get("nonzero_data")
    offset = args.get("offset", None)
    if offset is not None:
        data = data - _blockwise(offset, data.shape)
    data = data * _blockwise(args.get("scale"), data.shape)
    return [mask, data[mask != 0]]
