import gzip

import numpy as np
import pytest

from improved_gan.data.idx import parse_idx, read_idx, write_idx
from improved_gan.errors import DataError


@pytest.mark.parametrize("dtype", [np.uint8, np.int32, np.float32])
@pytest.mark.parametrize("name", ["a.idx", "a.idx.gz"])
def test_roundtrip(tmp_path, dtype, name):
    arr = (np.arange(2 * 3 * 4) * 3).reshape(2, 3, 4).astype(dtype)
    out = read_idx(write_idx(tmp_path / name, arr))
    assert out.dtype == np.dtype(dtype) and out.shape == (2, 3, 4)
    np.testing.assert_array_equal(out, arr)


def test_big_endian_header_and_values():
    data = bytes([0, 0, 0x0C, 1]) + (2).to_bytes(4, "big") + (1).to_bytes(4, "big") + (258).to_bytes(4, "big")
    np.testing.assert_array_equal(parse_idx(data), [1, 258])


def test_bad_magic():
    with pytest.raises(DataError, match="bad magic"):
        parse_idx(b"\x01\x02\x08\x01" + bytes(8), "x.idx")
    with pytest.raises(DataError, match="not an IDX"):
        parse_idx(b"", "empty")


def test_truncated_and_oversized(tmp_path):
    good = gzip.decompress(write_idx(tmp_path / "a.gz", np.zeros((5, 2, 2), np.uint8)).read_bytes())
    with pytest.raises(DataError, match="truncated"):
        parse_idx(good[:-1], "t")
    with pytest.raises(DataError, match=r"shape \(5, 2, 2\)"):
        parse_idx(good + b"\0", "t")


def test_broken_gzip(tmp_path):
    blob = write_idx(tmp_path / "a.gz", np.zeros((50, 20), np.uint8)).read_bytes()
    (tmp_path / "b.gz").write_bytes(blob[: len(blob) // 2])
    with pytest.raises(DataError, match="gzip"):
        read_idx(tmp_path / "b.gz")
