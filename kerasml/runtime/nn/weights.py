"""Decoding NeuralNetwork `WeightParams` into float32 arrays, checked against the expected size.

A `WeightParams` holds its values in exactly one of: `floatValue` (float32), `float16Value`
(little-endian IEEE half), `rawValue` with `quantization` (n-bit integers packed most significant bit
first, then either linear `scale * q + bias` per output channel or a lookup table), or
`int8RawValue`. Anything else, or a count that does not match the layer, is an error: a runtime must
never compute with weights of the wrong size.
"""

from __future__ import annotations

import numpy as np

from kerasml.errors import KerasmlError


def _quantized(params) -> bool:
    q = params.quantization
    return params.HasField("quantization") and bool(q.numberOfBits or q.WhichOneof("QuantizationType"))


def _unpack_bits(raw: bytes, count: int, nbits: int) -> np.ndarray:
    """n-bit unsigned integers packed most significant bit first (the NeuralNetwork convention)."""
    bits = np.unpackbits(np.frombuffer(raw, dtype=np.uint8))  # MSB first within each byte
    if bits.size < count * nbits:
        raise ValueError(f"{len(raw)} bytes hold fewer than {count} {nbits}-bit values")
    bits = bits[: count * nbits].reshape(count, nbits).astype(np.uint16)
    powers = (1 << np.arange(nbits - 1, -1, -1)).astype(np.uint16)
    return bits @ powers


def _dequantize(params, shape: tuple[int, ...], axis: int) -> np.ndarray:
    q = params.quantization
    nbits = q.numberOfBits
    if not 1 <= nbits <= 8:
        raise ValueError(f"quantization with {nbits} bits (1 to 8 are allowed)")
    count = int(np.prod(shape))
    raw = params.rawValue
    expected_bytes = (count * nbits + 7) // 8
    if len(raw) != expected_bytes:
        raise ValueError(f"{len(raw)} bytes of {nbits}-bit weights, expected {expected_bytes} for shape {shape}")
    ints = np.frombuffer(raw, dtype=np.uint8) if nbits == 8 else _unpack_bits(raw, count, nbits)
    ints = ints.reshape(shape)
    kind = q.WhichOneof("QuantizationType")
    if kind == "lookupTableQuantization":
        table = np.asarray(q.lookupTableQuantization.floatValue, dtype=np.float32)
        if table.size != 2**nbits:
            raise ValueError(f"lookup table of {table.size} entries, expected {2 ** nbits} for {nbits} bits")
        return table[ints]
    if kind == "linearQuantization":
        scale = np.asarray(q.linearQuantization.scale, dtype=np.float32)
        bias = np.asarray(q.linearQuantization.bias, dtype=np.float32)
        channels = shape[axis] if shape else 1
        for label, vec in (("scale", scale), ("bias", bias)):
            if vec.size not in (1, channels):
                raise ValueError(f"linear quantization {label} has {vec.size} values, expected 1 or {channels}")
        if bias.size == 0:
            bias = np.zeros(1, np.float32)
        bshape = [1] * len(shape)
        if shape:
            bshape[axis] = -1
        return ints.astype(np.float32) * scale.reshape(bshape) + bias.reshape(bshape)
    raise ValueError("quantized weights without linear or lookup-table parameters")


def decode(params, shape: tuple[int, ...], what: str, *, axis: int = 0) -> np.ndarray:
    """The float32 array of `shape` that `params` holds; `what` names it in errors.

    `axis` is the output-channel axis that per-channel linear quantization runs along.
    """
    shape = tuple(int(s) for s in shape)
    count = int(np.prod(shape))
    try:
        if _quantized(params):
            values = _dequantize(params, shape, axis)
        elif params.float16Value:
            if len(params.float16Value) != 2 * count:
                raise ValueError(f"{len(params.float16Value) // 2} float16 values, expected {count} for shape {shape}")
            values = np.frombuffer(params.float16Value, dtype="<f2").astype(np.float32)
        elif params.int8RawValue:
            raise ValueError("int8RawValue weights (dynamic int8 quantization) are not supported")
        elif params.rawValue and not params.floatValue:
            raise ValueError("rawValue weights without quantization parameters")
        else:
            if len(params.floatValue) != count:
                raise ValueError(f"{len(params.floatValue)} float values, expected {count} for shape {shape}")
            values = np.asarray(params.floatValue, dtype=np.float32)
    except ValueError as exc:
        raise KerasmlError(f"{what}: {exc}; the model file is malformed, convert it again") from None
    return np.ascontiguousarray(values.reshape(shape), dtype=np.float32)


def vector(params, count: int, what: str) -> np.ndarray:
    """A 1-D float32 parameter vector (bias, gamma, ...) of exactly `count` values."""
    return decode(params, (count,), what)
