"""Decoding ML Program (MIL) values: immediate tensors, lists, and blobs in `weights/weight.bin`.

The blob file (coremltools' MILBlob storage, version 2) starts with a 64-byte header (`uint32 count`,
`uint32 version`, reserved). Each `blobFileValue.offset` points at a 64-byte metadata record:
`uint32 sentinel = 0xDEADBEEF`, `uint32 data type`, `uint64 size in bytes`, `uint64 data offset`,
then reserved words. Sub-byte integers (uint1..uint6, int4) are packed least significant bit first.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

from kerasml.errors import KerasmlError
from kerasml.model import proto
from kerasml.runtime.errors import UnsupportedModelError

# MIL data type name -> (numpy dtype, bits per element when packed below a byte)
_DTYPES = {
    "BOOL": (np.bool_, 0),
    "FLOAT16": (np.float16, 0),
    "FLOAT32": (np.float32, 0),
    "FLOAT64": (np.float64, 0),
    "INT8": (np.int8, 0),
    "INT16": (np.int16, 0),
    "INT32": (np.int32, 0),
    "INT64": (np.int64, 0),
    "UINT8": (np.uint8, 0),
    "UINT16": (np.uint16, 0),
    "UINT32": (np.uint32, 0),
    "UINT64": (np.uint64, 0),
    "INT4": (np.int8, 4),
    "UINT1": (np.uint8, 1),
    "UINT2": (np.uint8, 2),
    "UINT3": (np.uint8, 3),
    "UINT4": (np.uint8, 4),
    "UINT6": (np.uint8, 6),
}
_SENTINEL = 0xDEADBEEF


def dtype_name(code: int) -> str:
    return proto.mil_pb2().DataType.Name(code)


def numpy_dtype(code: int):
    name = dtype_name(code)
    if name not in _DTYPES:
        raise UnsupportedModelError(f"ML Program data type {name} is not implemented by the kerasml runtime")
    return _DTYPES[name][0]


def unpack_bits(packed: np.ndarray, nbits: int, count: int, *, signed: bool) -> np.ndarray:
    """`count` n-bit integers packed least significant bit first (the MIL convention)."""
    bits = np.unpackbits(packed.view(np.uint8), bitorder="little")
    if bits.size < count * nbits:
        raise ValueError(f"{packed.size} bytes hold fewer than {count} {nbits}-bit values")
    bits = bits[: count * nbits].reshape(count, nbits).astype(np.int16)
    values = bits @ (1 << np.arange(nbits, dtype=np.int16))
    if signed:
        values = np.where(values >= 1 << (nbits - 1), values - (1 << nbits), values)
        return values.astype(np.int8)
    return values.astype(np.uint8)


class BlobFile:
    """Random access to one `weight.bin`, read once."""

    def __init__(self, path: Path):
        try:
            self.data = path.read_bytes()
        except OSError:
            raise KerasmlError(f"cannot read weights file {path}; the .mlpackage is incomplete") from None
        self.path = path
        if len(self.data) < 64:
            raise KerasmlError(f"{path} is truncated (no header); convert the model again")
        _, version = struct.unpack_from("<II", self.data, 0)
        if version != 2:
            raise UnsupportedModelError(
                f"{path} has weight storage version {version}; the kerasml runtime reads version 2"
            )

    def read(self, offset: int, code: int, shape: tuple[int, ...]) -> np.ndarray:
        if offset + 64 > len(self.data):
            raise KerasmlError(f"weight at offset {offset} lies past the end of {self.path}; the file is truncated")
        sentinel, _, size, start = struct.unpack_from("<IIQQ", self.data, offset)
        if sentinel != _SENTINEL:
            raise KerasmlError(f"no weight record at offset {offset} of {self.path}; the file is corrupt")
        if start + size > len(self.data):
            raise KerasmlError(f"weight at offset {offset} runs past the end of {self.path}; the file is truncated")
        return from_bytes(self.data[start : start + size], code, shape)


class BlobFiles:
    """The weight files of one ML Program, by the `@model_path/...` names its constants give, each
    read once. `@model_path` is the folder of the model file inside the .mlpackage: a name that
    leaves it (`@model_path/../../../etc/passwd`, or a link pointing out) would make kerasml read
    any file, so it is refused."""

    def __init__(self, folder: Path | None):
        self.folder = folder
        self._files: dict[str, BlobFile] = {}

    def __call__(self, file_name: str) -> BlobFile:
        if file_name not in self._files:
            if self.folder is None or not file_name.startswith("@model_path/"):
                raise KerasmlError(f"the ML Program keeps weights in {file_name}; load it from its .mlpackage folder")
            path = self.folder / file_name[len("@model_path/") :]
            if not path.resolve().is_relative_to(self.folder.resolve()):
                raise KerasmlError(
                    f"the ML Program keeps weights in {file_name}, outside its .mlpackage; kerasml reads "
                    "nothing outside the package: convert the model again"
                )
            self._files[file_name] = BlobFile(path)
        return self._files[file_name]


def from_bytes(raw: bytes, code: int, shape: tuple[int, ...]) -> np.ndarray:
    name = dtype_name(code)
    if name not in _DTYPES:
        raise UnsupportedModelError(f"ML Program data type {name} is not implemented by the kerasml runtime")
    dtype, nbits = _DTYPES[name]
    count = int(np.prod(shape))
    if nbits:
        expected = (count * nbits + 7) // 8
        if len(raw) != expected:
            raise KerasmlError(
                f"{len(raw)} bytes of {name} data, expected {expected} for shape {shape}; the model is malformed"
            )
        values = unpack_bits(np.frombuffer(raw, np.uint8), nbits, count, signed=name == "INT4")
    else:
        if len(raw) != count * np.dtype(dtype).itemsize:
            raise KerasmlError(
                f"{len(raw)} bytes of {name} data, expected {count} values for shape {shape}; the model is malformed"
            )
        values = np.frombuffer(raw, dtype=np.dtype(dtype).newbyteorder("<")).astype(dtype)
    return values.reshape(shape)


def tensor_shape(tensor_type) -> tuple[int, ...]:
    dims = []
    for dim in tensor_type.dimensions:
        if dim.WhichOneof("dimension") != "constant":
            raise UnsupportedModelError("ML Program tensors of unknown size are not implemented by the kerasml runtime")
        dims.append(int(dim.constant.size))
    return tuple(dims)


def _immediate_tensor(tensor, code: int, shape: tuple[int, ...]):
    kind = tensor.WhichOneof("value")
    if kind == "bytes":
        return from_bytes(tensor.bytes.values, code, shape)
    if kind == "strings":
        values = list(tensor.strings.values)
        return values[0] if not shape and len(values) == 1 else values
    field = {
        "floats": tensor.floats,
        "ints": tensor.ints,
        "bools": tensor.bools,
        "longInts": tensor.longInts,
        "doubles": tensor.doubles,
    }.get(kind)
    if field is None:
        raise UnsupportedModelError(
            f"ML Program immediate value of kind {kind} is not implemented by the kerasml runtime"
        )
    values = np.asarray(list(field.values), dtype=numpy_dtype(code))
    if values.size != int(np.prod(shape)):
        raise KerasmlError(f"an ML Program constant has {values.size} values for shape {shape}; the model is malformed")
    return values.reshape(shape)


def decode(value, blobs) -> object:
    """A `MIL_pb2.Value` as a NumPy array, str, or list; `blobs(file_name)` gives a `BlobFile`."""
    vtype = value.type
    kind = vtype.WhichOneof("type")
    if kind == "tensorType":
        code, shape = vtype.tensorType.dataType, tensor_shape(vtype.tensorType)
        source = value.WhichOneof("value")
        if source == "immediateValue":
            return _immediate_tensor(value.immediateValue.tensor, code, shape)
        if source == "blobFileValue":
            return blobs(value.blobFileValue.fileName).read(value.blobFileValue.offset, code, shape)
        raise KerasmlError("an ML Program constant has no value; the model is malformed")
    if kind == "listType" and value.WhichOneof("value") == "immediateValue":
        return [decode(v, blobs) for v in value.immediateValue.list.values]
    raise UnsupportedModelError(f"ML Program values of type {kind} are not implemented by the kerasml runtime")
