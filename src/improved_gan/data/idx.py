"""The IDX format of MNIST and Fashion-MNIST (http://yann.lecun.com/exdb/mnist/, bottom of the page).

Header: two zero bytes, a type code (0x08 unsigned byte, 0x09 signed byte, 0x0B int16, 0x0C int32,
0x0D float32, 0x0E float64), the number of dimensions, then one big-endian int32 per dimension; the
data follows, big-endian, in C order. Files may be gzip-compressed (``.gz``) or raw.
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np

from improved_gan.errors import DataError

_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_bytes(path: str | Path) -> bytes:
    """The decompressed content of ``path`` (gzip detected by its magic bytes, not by the name)."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc}") from None
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as exc:
            raise DataError(f"{path} is not a complete gzip file ({exc}); delete it and fetch it "
                            "again") from None
    return data


def parse_idx(data: bytes, name: str = "<bytes>") -> np.ndarray:
    """Parse IDX bytes into an array (native byte order, read-only view copied into a fresh array)."""
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _TYPES:
        raise DataError(f"{name} is not an IDX file (bad magic {data[:4].hex() or 'empty'}; expected "
                        "00 00 <type 08/09/0b/0c/0d/0e> <ndim>)")
    dtype = np.dtype(_TYPES[data[2]])
    ndim = data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(f"{name}: IDX header says {ndim} dimensions but the file has only {len(data)} bytes")
    shape = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    expected = header + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(data) != expected:
        raise DataError(f"{name}: IDX header gives shape {shape} ({expected} bytes) but the file has "
                        f"{len(data)} bytes; it is truncated or corrupted, fetch it again")
    arr = np.frombuffer(data, dtype=dtype, count=int(np.prod(shape, dtype=np.int64)), offset=header)
    return arr.reshape(shape).astype(dtype.newbyteorder("="), copy=True)


def read_idx(path: str | Path) -> np.ndarray:
    """Read a (possibly gzipped) IDX file. No checksum here; see :mod:`improved_gan.data.download`."""
    return parse_idx(read_bytes(path), str(path))


def write_idx(path: str | Path, array: np.ndarray, compress: bool | None = None) -> Path:
    """Write ``array`` as IDX (gzipped when ``compress`` or when the name ends in ``.gz``); for tests."""
    path = Path(path)
    codes = {np.dtype(v).newbyteorder("="): k for k, v in _TYPES.items()}
    dtype = np.dtype(array.dtype).newbyteorder("=")
    if dtype not in codes:
        raise ValueError(f"IDX cannot hold dtype {array.dtype}")
    dims = b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    header = bytes([0, 0, codes[dtype], array.ndim]) + dims
    data = header + np.ascontiguousarray(array).astype(_TYPES[codes[dtype]]).tobytes()
    if compress or (compress is None and path.name.endswith(".gz")):
        data = gzip.compress(data, compresslevel=6)
    path.write_bytes(data)
    return path
