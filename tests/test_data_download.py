"""The downloader against a local HTTP server on 127.0.0.1 (no internet needed)."""

import dataclasses
import gzip
import hashlib
import http.server
import os
import threading
from pathlib import Path

import numpy as np
import pytest

from improved_gan.data import download
from improved_gan.data.idx import parse_idx, write_idx
from improved_gan.data.registry import REGISTRY, DatasetSpec, FileSpec
from improved_gan.errors import DataError

REAL_DATA = os.environ.get("IMPROVED_GAN_DATA")  # read before the fixtures clear it


class _Handler(http.server.BaseHTTPRequestHandler):
    files: dict = {}  # path -> (mode, bytes)

    def do_GET(self):  # noqa: N802
        mode, body = self.files.get(self.path, ("missing", b""))
        if mode == "missing":
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if mode == "interrupt":  # half the body, then the connection drops
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    handler = type("H", (_Handler,), {"files": {}})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd, handler.files, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("IMPROVED_GAN_DATA", raising=False)
    monkeypatch.delenv("IMPROVED_GAN_NO_DOWNLOAD", raising=False)
    return tmp_path


def _toy_spec(tmp_path, mirrors=()):
    arr = np.arange(200 * 4, dtype=np.uint8).reshape(200, 4)
    gz = write_idx(tmp_path / "toy-idx2-ubyte.gz", arr).read_bytes()
    raw = gzip.decompress(gz)
    f = FileSpec("toy-idx2-ubyte.gz", sha256=hashlib.sha256(raw).hexdigest(), size=len(raw))
    return DatasetSpec("toy", {"train": f}, mirrors=tuple(mirrors)), gz, arr


def _cache_files(tmp_path):
    root = tmp_path / "cache" / "improved_gan"
    return sorted(p.name for p in root.rglob("*") if p.is_file()) if root.exists() else []


def test_download_verifies_and_caches(env, server):
    _, files, url = server
    spec, gz, arr = _toy_spec(env, [url + "/m/"])
    files["/m/toy-idx2-ubyte.gz"] = ("ok", gz)
    data = download.load_file(spec, "train")
    np.testing.assert_array_equal(parse_idx(data), arr)
    assert _cache_files(env) == ["toy-idx2-ubyte.gz"]
    files.clear()  # second load comes from the cache, no server needed
    np.testing.assert_array_equal(parse_idx(download.load_file(spec, "train")), arr)


def test_corrupted_download_is_refused_and_not_cached(env, server):
    _, files, url = server
    spec, gz, _ = _toy_spec(env, [url + "/m/"])
    bad = bytearray(gzip.decompress(gz))
    bad[-1] ^= 0xFF
    files["/m/toy-idx2-ubyte.gz"] = ("ok", gzip.compress(bytes(bad)))
    with pytest.raises(DataError) as info:
        download.load_file(spec, "train")
    msg = str(info.value)
    assert spec.files["train"].sha256 in msg and hashlib.sha256(bytes(bad)).hexdigest() in msg
    assert "toy-idx2-ubyte.gz" in msg and "--data-dir" in msg
    assert _cache_files(env) == []


def test_interrupted_download_leaves_no_partial_file(env, server):
    _, files, url = server
    spec, gz, arr = _toy_spec(env, [url + "/a/"])
    files["/a/toy-idx2-ubyte.gz"] = ("interrupt", gz)
    with pytest.raises(DataError, match="could not download"):
        download.load_file(spec, "train")
    assert _cache_files(env) == []
    # with a second, good mirror the file arrives whole
    spec = dataclasses.replace(spec, mirrors=(url + "/a/", url + "/missing/", url + "/b/"))
    files["/b/toy-idx2-ubyte.gz"] = ("ok", gz)
    np.testing.assert_array_equal(parse_idx(download.load_file(spec, "train")), arr)
    assert _cache_files(env) == ["toy-idx2-ubyte.gz"]


def test_downloads_off_names_searched_places(env, monkeypatch):
    spec, _, _ = _toy_spec(env, ["http://127.0.0.1:9/"])
    monkeypatch.setenv("IMPROVED_GAN_NO_DOWNLOAD", "1")
    with pytest.raises(DataError, match="not found") as info:
        download.load_file(spec, "train", data_dir=str(env / "d"))
    assert str(env / "d" / "toy" / "toy-idx2-ubyte.gz") in str(info.value)


def test_resolution_order(env, monkeypatch):
    spec, gz, arr = _toy_spec(env)
    spec = dataclasses.replace(spec, system_dirs=(str(env / "system"),))
    # only the system dir has it
    (env / "system").mkdir()
    (env / "system" / "toy-idx2-ubyte.gz").write_bytes(gz)
    np.testing.assert_array_equal(parse_idx(download.load_file(spec, "train", download=False)), arr)
    # a corrupted copy earlier in the order is an error, never skipped silently
    cache = env / "cache" / "improved_gan" / "toy"
    cache.mkdir(parents=True)
    (cache / "toy-idx2-ubyte").write_bytes(gzip.decompress(gz)[:-1])  # raw (gunzipped) and truncated
    with pytest.raises(DataError, match="811 bytes, expected 812"):
        download.load_file(spec, "train", download=False)
    # IMPROVED_GAN_DATA comes first; data_dir beats the environment variable
    (env / "envdir" / "toy").mkdir(parents=True)
    (env / "envdir" / "toy" / "toy-idx2-ubyte.gz").write_bytes(gz)
    monkeypatch.setenv("IMPROVED_GAN_DATA", str(env / "envdir"))
    np.testing.assert_array_equal(parse_idx(download.load_file(spec, "train", download=False)), arr)
    (env / "arg").mkdir()
    (env / "arg" / "toy-idx2-ubyte.gz").write_bytes(b"junk")
    with pytest.raises(DataError, match="not an IDX|corrupted"):
        download.load_file(spec, "train", data_dir=str(env / "arg"), download=False)


def test_cache_dir_default(monkeypatch):
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    assert download.cache_dir() == Path(os.path.expanduser("~")) / ".cache" / "improved_gan"


def test_fashion_mnist_debian_location_registered():
    assert "/usr/share/datasets/fashion-mnist" in REGISTRY["fashion-mnist"].system_dirs


def test_real_mnist_file_over_http(env, server):
    root = REAL_DATA
    if not root:
        pytest.skip("IMPROVED_GAN_DATA is not set: no verified MNIST copy to serve")
    _, files, url = server
    gz = (Path(root) / "mnist" / "t10k-labels-idx1-ubyte.gz").read_bytes()
    files["/mnist/t10k-labels-idx1-ubyte.gz"] = ("ok", gz)
    data = download.load_file(REGISTRY["mnist"], "test-labels", mirrors=(url + "/mnist/",))
    assert np.bincount(parse_idx(data)).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
