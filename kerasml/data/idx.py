"""IDX files (the format MNIST and Fashion-MNIST ship in), plain or gzipped.

The header is two zero bytes, a type code, the number of dimensions, then one big-endian
uint32 per dimension; the data follows in C order. Everything is checked against the header,
so a truncated or padded file is an error rather than a silently misshapen array.
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np

from kerasml.errors import KerasmlError

_DTYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_MAX_BYTES = 2**31  # far beyond any image set kerasml trains on; stops absurd headers early


def read_idx_bytes(raw: bytes, name: str = "IDX data") -> np.ndarray:
    """Parse an IDX payload (already decompressed) into an array."""
    if len(raw) < 4:
        raise KerasmlError(f"{name} is not an IDX file: {len(raw)} bytes is too short for a header")
    if raw[0] != 0 or raw[1] != 0 or raw[2] not in _DTYPES:
        raise KerasmlError(f"{name} is not an IDX file (bad magic number {raw[:4].hex()}); "
                           "expected MNIST-style files such as train-images-idx3-ubyte.gz")
    dtype = _DTYPES[raw[2]]
    ndim = raw[3]
    if ndim == 0:
        raise KerasmlError(f"{name} declares zero dimensions; it is not a usable IDX file")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise KerasmlError(f"{name} is truncated: its header needs {header} bytes, the file has {len(raw)}")
    shape = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if expected > _MAX_BYTES:
        raise KerasmlError(f"{name} declares shape {shape}, too large to be an image set")
    actual = len(raw) - header
    if actual != expected:
        problem = "truncated" if actual < expected else "longer than its header says"
        raise KerasmlError(f"{name} is {problem}: shape {shape} needs {expected} data bytes, "
                           f"found {actual}; download the file again")
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file; gzip is detected from the content, not the name."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except IsADirectoryError:
        raise KerasmlError(f"{path} is a directory, not an IDX file") from None
    except OSError as exc:
        raise KerasmlError(f"cannot read {path}: {exc.strerror}") from None
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:
            raise KerasmlError(f"{path} is a damaged gzip file ({exc}); download it again") from None
    return read_idx_bytes(raw, name=str(path))
