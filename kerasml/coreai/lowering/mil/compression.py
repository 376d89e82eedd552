"""ML Program weight compression (`constexpr_*`) kept compressed in Core AI, and the 8-bit
activation ops (`quantize`, `dequantize`) of w8a8 programs.

Each constexpr op becomes Core AI's own decompressing op on constants, a SHARED value the
convolution, linear or matmul that reads it takes as its weight; Core AI stores the compressed form
and expands it when the model loads:

    constexpr_lut_to_dense (iOS 16, iOS 18)    lut_to_dense: n-bit indices, one palette per block
    constexpr_affine_dequantize (iOS 16)       blockwise_shift_scale, one block per channel or tensor
    constexpr_blockwise_shift_scale (iOS 18)   blockwise_shift_scale
    constexpr_cast (fp16 → fp32)               blockwise_shift_scale of fp16 data by 1
    constexpr_sparse_to_dense (iOS 16, 18)     build_sparse_with_bitmask + sparse_with_bitmask_to_dense
    constexpr_lut_to_sparse (iOS 18)           lut_to_sparse_with_bitmask on sparse indices
    constexpr_sparse_blockwise_shift_scale     the sparse 8-bit values made dense, then
                                               blockwise_shift_scale; 4-bit values dense at 4 bits
                                               (Core AI's sparse tensors take no signed 4-bit values)

Indices and quantized values are stored in the narrowest integer type that holds them (1, 2, 3,
4, 6 or 8 bits, as the palette size dictates for indices). Core AI's runtime reads sub-byte
constants packed, least significant bit first (MIL's own order), which only a resource blob
holds: a dense elements constant keeps one byte per value, and the runtime then reads past it.

The kerasml runtime's result (the oracle) travels with each SHARED value as `Tensor.dense`, so an
op that needs the weights at conversion gets them decompressed there.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from kerasml.coreai.lowering.graph import SHARED, Tensor
from kerasml.coreai.lowering.mil.op import Op
from kerasml.coreai.lowering.registry import MIL_LOWERINGS, lowers
from kerasml.runtime.mil.args import Args
from kerasml.runtime.mil.values import unpack_bits
from kerasml.runtime.registry import MIL_OPS

_BLOBS = itertools.count()
_INDEX_BITS = (1, 2, 3, 4, 6, 8)


def keeps_compressed(fn):
    """Marks a lowering that runs on constants (program.py lowers it instead of folding it)."""
    fn.keeps_compressed = True
    return fn


# -- constants ------------------------------------------------------------------------------------

def int_constant(g, values, bits: int, signed: bool):
    """A Core AI integer constant of `bits` bits; below 8 bits packed into a resource blob."""
    values = np.asarray(values)
    if bits == 8:
        return _const(np.ascontiguousarray(values.astype(np.int8 if signed else np.uint8)))
    from coreai._compiler.dialects._coreai_ops_gen import ConstantOp
    from coreai._compiler.ir import DenseResourceElementsAttr, IntegerType, RankedTensorType
    from coreai.authoring.operation import Value

    flat = values.reshape(-1).astype(np.int64) & ((1 << bits) - 1)
    planes = ((flat[:, None] >> np.arange(bits)) & 1).astype(np.uint8).reshape(-1)
    packed = np.packbits(planes, bitorder="little")
    element = IntegerType.get_signed(bits) if signed else IntegerType.get_unsigned(bits)
    attr = DenseResourceElementsAttr.get_from_buffer(
        memoryview(packed), f"kerasml_weights_{next(_BLOBS)}", RankedTensorType.get(list(values.shape), element))
    return Value._from_mlir(ConstantOp(value=attr).result)


def _const(array):
    from coreai.authoring.constant import constant

    return constant(array)


def _width(values, signed: bool, choices=(4, 8)) -> int:
    """The fewest bits among `choices` that hold every value."""
    values = np.asarray(values)
    if values.size == 0:
        return choices[0]
    low, high = int(values.min()), int(values.max())
    for bits in choices:
        lo, hi = ((-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1))
        if lo <= low and high <= hi:
            return bits
    raise ValueError(f"integer weights from {low} to {high} do not fit 8 bits")


def _index_bits(palette: int) -> int:
    bits = int(np.log2(palette)) if palette > 0 else 0
    if palette != 1 << bits or bits not in _INDEX_BITS:
        raise ValueError(f"a palette of {palette} entries (Core AI's palettes have 2, 4, 8, 16, 64 or 256)")
    return bits


def _shared(value, dense: np.ndarray, dtype) -> Tensor:
    dense = np.asarray(dense).astype(dtype)
    return Tensor(value, tuple(dense.shape), np.dtype(dtype), SHARED, dense)


def _runtime(op: Op) -> list:
    """What kerasml's runtime computes for this constexpr op (the oracle), in the declared dtypes."""
    bound = {param: [_as_array(v) for v in op.many(param)] for param in op.params()}
    flags = {param: [False] * len(values) for param, values in bound.items()}
    results = MIL_OPS[op.kind](Args(op.name, op.kind, bound, flags, op.dtypes))
    return [np.asarray(r).astype(d) if d is not None else np.asarray(r) for r, d in zip(results, op.dtypes)]


def _as_array(value):
    if isinstance(value, Tensor):
        return value.dense
    if isinstance(value, SparseHalf):
        return value.array
    return value


def _array(op: Op, param: str, default=None):
    value = op.get(param, default)
    return None if value is None else np.asarray(_as_array(value))


@dataclass(frozen=True)
class SparseHalf:
    """One output (mask or non-zero values) of an op whose result is a sparse tensor; the pair's
    `constexpr_sparse_to_dense` takes `dense_value` (Core AI, dense) from either half."""

    array: np.ndarray
    dense_value: object      # a Core AI value: the whole weight, zeros where the mask is 0


# -- palettes -------------------------------------------------------------------------------------

def _lut_operand(lut: np.ndarray, rank: int):
    """A MIL iOS 16 palette (P,) as Core AI's (1, ..., 1, P, 1); iOS 18's are already (*blocks, P, V)."""
    lut = np.asarray(lut)
    if lut.ndim == 1:
        lut = lut.reshape((1,) * rank + (lut.shape[0], 1))
    return np.ascontiguousarray(lut)


@lowers(MIL_LOWERINGS, "constexpr_lut_to_dense", params="lut indices shape vector_axis")
@keeps_compressed
def lut_to_dense(op: Op) -> list:
    (dense,) = _runtime(op)
    lut = _array(op, "lut")
    indices = _array(op, "indices")
    if op.has("shape"):       # iOS 16: one table, the indices packed into bytes
        shape = tuple(op.ints("shape"))
        bits = _index_bits(lut.shape[0])
        count = int(np.prod(shape))
        indices = (indices if bits == 8 else unpack_bits(indices, bits, count, signed=False))[:count].reshape(shape)
    else:
        bits = _index_bits(lut.shape[-2])
    axis = int(op.scalar("vector_axis", 0) or 0) % max(indices.ndim, 1)
    g = op.g
    value = g.A.lut_to_dense(int_constant(g, indices, bits, signed=False), _lut_operand(lut, indices.ndim),
                             np.int16(axis))
    return [_shared(value, dense, op.dtype)]


@lowers(MIL_LOWERINGS, "constexpr_lut_to_sparse", params="indices_mask indices_nonzero_data lut vector_axis")
@keeps_compressed
def lut_to_sparse(op: Op) -> list:
    mask_out, values_out = _runtime(op)
    mask, lut = _array(op, "indices_mask"), _array(op, "lut")
    nonzero = _array(op, "indices_nonzero_data")
    bits = _index_bits(lut.shape[-2])
    g = op.g
    axis = int(op.scalar("vector_axis", 0) or 0) % max(mask.ndim, 1)
    sparse = g.A.build_sparse_with_bitmask(int_constant(g, nonzero, bits, signed=False),
                                           int_constant(g, mask != 0, 1, signed=False))
    sparse = g.A.lut_to_sparse_with_bitmask(sparse, _const(_lut_operand(lut, mask.ndim)),
                                            _const(np.int16(axis)))
    dense_value = g.A.sparse_with_bitmask_to_dense(sparse)
    return [SparseHalf(mask_out, dense_value), SparseHalf(values_out, dense_value)]


# -- linear quantization --------------------------------------------------------------------------

def _blockwise(g, data: np.ndarray, scale: np.ndarray, offset, out_dtype, data_value=None):
    """scale * (data - offset), each parameter of data's rank tiling it in blocks: Core AI's
    blockwise_shift_scale with data in the narrowest integer type (float data stays as it is).
    A float offset becomes the post-scaling bias -offset * scale."""
    scale = np.asarray(scale)
    post = np.zeros(scale.shape, out_dtype)
    offset = None if offset is None else np.asarray(offset)
    if offset is not None and offset.shape != scale.shape:
        offset = np.broadcast_to(offset, scale.shape)
    if data.dtype.kind == "f":
        pre = np.zeros(scale.shape, data.dtype)
        if offset is not None:
            pre = offset.astype(data.dtype)
        operand = data_value if data_value is not None else _const(np.ascontiguousarray(data))
        return g.A.blockwise_shift_scale(operand, scale.astype(out_dtype), pre, post)
    if offset is not None and offset.dtype.kind == "f":
        post = (-(offset.astype(np.float32) * scale.astype(np.float32))).astype(out_dtype)
        offset = None
    pre = np.zeros(scale.shape, np.int64) if offset is None else offset.astype(np.int64)
    if data_value is not None:       # data Core AI computes (a palette of int8 values): its own type
        signed, bits = data.dtype.kind == "i", 8 * data.dtype.itemsize
    else:
        signed = data.dtype.kind == "i" or (offset is not None and offset.dtype.kind == "i" and offset.min() < 0)
        bits = _width(np.concatenate([data.reshape(-1).astype(np.int64), pre.reshape(-1)]), signed)
    operand = data_value if data_value is not None else int_constant(g, data, bits, signed)
    return g.A.blockwise_shift_scale(operand, scale.astype(out_dtype), int_constant(g, pre, bits, signed),
                                     post)


def _per_axis(values, rank: int, axis: int) -> np.ndarray:
    """A scalar or per-channel parameter shaped (1, ..., C at `axis`, ..., 1) for a rank-`rank` tensor."""
    values = np.asarray(values)
    if values.size == 1:
        return values.reshape((1,) * rank)
    shape = [1] * rank
    shape[axis % rank] = -1
    return values.reshape(shape)


@lowers(MIL_LOWERINGS, "constexpr_affine_dequantize", params="quantized_data zero_point scale axis")
@keeps_compressed
def affine_dequantize(op: Op) -> list:
    (dense,) = _runtime(op)
    data = _array(op, "quantized_data")
    axis = int(op.scalar("axis", 0))
    scale = _per_axis(_array(op, "scale"), data.ndim, axis)
    zero = _per_axis(_array(op, "zero_point"), data.ndim, axis)
    zero = np.broadcast_to(zero, np.broadcast_shapes(zero.shape, scale.shape)).astype(zero.dtype)
    scale = np.broadcast_to(scale, zero.shape)
    return [_shared(_blockwise(op.g, data, scale, zero, op.dtype), dense, op.dtype)]


@lowers(MIL_LOWERINGS, "constexpr_blockwise_shift_scale", params="data scale offset")
@keeps_compressed
def blockwise_shift_scale(op: Op) -> list:
    (dense,) = _runtime(op)
    data_in = op.get("data")
    data = _array(op, "data")
    data_value = data_in.value if isinstance(data_in, Tensor) else None  # e.g. a palette's int8 output
    value = _blockwise(op.g, data, _array(op, "scale"), _array(op, "offset"), op.dtype, data_value)
    return [_shared(value, dense, op.dtype)]


@lowers(MIL_LOWERINGS, "constexpr_cast", params="source_val output_dtype")
@keeps_compressed
def constexpr_cast(op: Op) -> list:
    """fp16 weights read as fp32: Core AI folds a cast of a constant, so it is a blockwise scale by 1."""
    (dense,) = _runtime(op)
    data = _array(op, "source_val")
    ones = np.ones((1,) * data.ndim, np.float32)
    return [_shared(_blockwise(op.g, data, ones, None, op.dtype), dense, op.dtype)]


# -- sparsity -------------------------------------------------------------------------------------

def _sparse_dense_value(g, mask: np.ndarray, nonzero: np.ndarray):
    """Core AI's dense tensor from a bitmask and the values where it is 1 (row-major order)."""
    values = np.asarray(nonzero)
    if values.dtype.kind == "f":
        operand = _const(np.ascontiguousarray(values))
    elif values.dtype.kind == "i" and values.size and values.min() < 0:
        operand = _const(np.ascontiguousarray(values.astype(np.int8)))  # no signed sub-byte sparse values
    else:
        operand = int_constant(g, values, _width(values, signed=False, choices=_INDEX_BITS), signed=False)
    sparse = g.A.build_sparse_with_bitmask(operand, int_constant(g, mask != 0, 1, signed=False))
    return g.A.sparse_with_bitmask_to_dense(sparse)


@lowers(MIL_LOWERINGS, "constexpr_sparse_to_dense", params="nonzero_data mask shape")
@keeps_compressed
def sparse_to_dense(op: Op) -> list:
    nonzero, mask = op.get("nonzero_data"), op.get("mask")
    for half in (nonzero, mask):
        if isinstance(half, SparseHalf):       # the second half of lut_to_sparse or sparse_blockwise_shift_scale
            return [_shared(half.dense_value, _runtime(op)[0], op.dtype)]
    (dense,) = _runtime(op)
    mask = _array(op, "mask")
    if op.has("shape"):       # iOS 16: the bitmask packed into bytes
        shape = tuple(op.ints("shape"))
        mask = unpack_bits(mask.astype(np.uint8), 1, int(np.prod(shape)), signed=False).reshape(shape)
    if not np.any(mask):
        return [dense]
    return [_shared(_sparse_dense_value(op.g, mask, _array(op, "nonzero_data")), dense, op.dtype)]


@lowers(MIL_LOWERINGS, "constexpr_sparse_blockwise_shift_scale", params="data_mask nonzero_data scale offset")
@keeps_compressed
def sparse_blockwise_shift_scale(op: Op) -> list:
    """Sparse quantized weights: what is pruned must stay 0 after the shift, so with an offset the
    weights are dense. 4-bit values are dense at 4 bits (smaller than 8-bit sparse values, the
    narrowest signed ones Core AI's sparse tensors take, below 75% sparsity)."""
    mask_out, values_out = _runtime(op)
    mask, nonzero = _array(op, "data_mask"), _array(op, "nonzero_data")
    scale, offset = _array(op, "scale"), _array(op, "offset")
    g = op.g
    data = np.zeros(mask.shape, nonzero.dtype)
    data[mask != 0] = nonzero
    if offset is not None and np.any(offset):
        value = _blockwise(g, data, scale, offset, op.dtypes[1])
    elif nonzero.dtype.kind == "f":
        value = _blockwise(g, data, scale, None, op.dtypes[1],
                           _sparse_dense_value(g, mask, nonzero))
    else:
        signed = nonzero.dtype.kind == "i"
        bits = _width(nonzero, signed)
        dense_bytes = data.size * bits / 8
        sparse_bytes = nonzero.size + data.size / 8
        if bits == 4 and signed or dense_bytes <= sparse_bytes:
            value = _blockwise(g, data, scale, None, op.dtypes[1])
        else:
            dense_q = _sparse_dense_value(g, mask, nonzero.astype(np.int8 if signed else np.uint8))
            value = g.A.blockwise_shift_scale(dense_q, scale.astype(op.dtypes[1]),
                                              np.zeros(scale.shape, np.int8 if signed else np.uint8),
                                              np.zeros(scale.shape, op.dtypes[1]))
    return [SparseHalf(mask_out, value), SparseHalf(values_out, value)]


# -- 8-bit activations (w8a8) -----------------------------------------------------------------------

_RANGES = {"int8": np.int8, "uint8": np.uint8}


def _activation_params(op: Op, x: Tensor, scale, zero, zero_dtype):
    """Core AI's (scale, offset1, axis) for MIL's per-tensor or per-axis parameters on batched x."""
    scale = np.asarray(scale, np.float32)
    zero = np.zeros(scale.shape, zero_dtype) if zero is None else np.asarray(zero).astype(zero_dtype)
    if scale.size == 1 and zero.size == 1:
        rank = len(x.core_shape())
        return x, scale.reshape(()), zero.reshape(()), np.arange(rank, dtype=np.int32)
    axis = int(op.scalar("axis"))
    x, (core,) = op.g.on_axes(x, [axis])
    n = x.shape[axis % x.rank]
    return x, np.broadcast_to(scale.reshape(-1), (n,)).copy(), np.broadcast_to(zero.reshape(-1), (n,)).copy(), \
        np.asarray(core, np.int32)


@lowers(MIL_LOWERINGS, "quantize", params="input zero_point scale axis output_dtype")
def quantize(op: Op) -> list:
    """clip(round(x / scale) + zero_point), rounding half to even, computed in float32 as MIL does."""
    g, x = op.g, op.batched("input")
    out = str(op.scalar("output_dtype"))
    if out not in _RANGES:
        raise op.unsupported(f"output_dtype '{out}'")
    if x.dtype != np.float32:
        x = g.unary(lambda v: g.A.cast(v, np.float32), x, np.dtype(np.float32))
    x, scale, zero, axis = _activation_params(op, x, op.const("scale"), op.const("zero_point", None), _RANGES[out])
    value = g.A.quantize(x.value, scale, zero, np.zeros(scale.shape, np.float32), axis)
    return [Tensor(value, x.shape, np.dtype(_RANGES[out]), x.layout)]


@lowers(MIL_LOWERINGS, "dequantize", params="input zero_point scale axis")
def dequantize(op: Op) -> list:
    g, x = op.g, op.batched("input")
    x, scale, zero, axis = _activation_params(op, x, op.const("scale"), op.const("zero_point", None), x.dtype)
    value = g.A.dequantize(x.value, scale, zero, np.zeros(scale.shape, np.float32), axis)
    y = Tensor(value, x.shape, np.dtype(np.float32), x.layout)
    if op.dtype != np.float32:
        y = g.unary(lambda v: g.A.cast(v, op.dtype.type), y, op.dtype)
    return [y]

