"""Find a dataset file, verify it, and download it when no verified copy exists.

Where a file comes from, in order:

1. ``data_dir`` (the ``--data-dir`` option) or else the environment variable ``IMPROVED_GAN_DATA``:
   ``DIR/<dataset>/<file>`` (or ``DIR/<file>``), gzipped or not;
2. the cache, ``$XDG_CACHE_HOME/improved_gan/<dataset>`` or ``~/.cache/improved_gan/<dataset>``;
3. the install location of an operating-system package (Debian's ``dataset-fashion-mnist`` puts
   Fashion-MNIST in ``/usr/share/datasets/fashion-mnist``);
4. a download from the dataset's public mirrors into the cache: written to a temporary file in the
   cache folder, verified, then moved into place with ``os.replace`` (atomic), so an interrupted or
   corrupted download never leaves a file that a later run would pick up.

A file that is found is *always* verified (sha256 of its decompressed content, or md5 of the file where
only that is recorded), and a mismatch raises :class:`DataError` naming the file, both hashes and the
fix; it never falls through to another copy silently. Verification is done on the bytes that are then
parsed (no second read), which costs about as much as the gzip decompression itself (see
``docs/ssl.md``), so no verification stamp is kept. ``IMPROVED_GAN_NO_DOWNLOAD=1`` forbids step 4.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import urllib.error
import urllib.request
import uuid
from pathlib import Path

from improved_gan.data.idx import read_bytes
from improved_gan.data.registry import DatasetSpec, FileSpec
from improved_gan.errors import DataError

ENV_DATA = "IMPROVED_GAN_DATA"
ENV_NO_DOWNLOAD = "IMPROVED_GAN_NO_DOWNLOAD"
TIMEOUT_S = 60.0


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "improved_gan"


def search_dirs(spec: DatasetSpec, data_dir: str | os.PathLike | None = None) -> list[Path]:
    """The folders searched for ``spec``'s files, in order."""
    dirs: list[Path] = []
    root = data_dir if data_dir else os.environ.get(ENV_DATA)
    if root:
        dirs += [Path(root) / spec.name, Path(root)]
    dirs.append(cache_dir() / spec.name)
    dirs += [Path(d) for d in spec.system_dirs]
    return dirs


def _how_to_fix(spec: DatasetSpec, f: FileSpec) -> str:
    return (f"Put a verified copy of {f.name} in DIR/{spec.name}/ and pass --data-dir DIR (or set "
            f"{ENV_DATA}=DIR), or delete the bad file and let the loader download a fresh one from "
            f"{', '.join(spec.mirrors)}.")


def verify(data: bytes, spec: DatasetSpec, f: FileSpec, where: str, stored: bytes | None = None) -> None:
    """Raise DataError unless ``data`` (decompressed content; ``stored``: the file as on disk) matches."""
    if f.sha256 is not None:
        if f.size is not None and len(data) != f.size:
            actual = hashlib.sha256(data).hexdigest()
            raise DataError(
                f"{where} ({spec.name} {f.name}) is corrupted: its decompressed content has "
                f"{len(data)} bytes, expected {f.size}; sha256 {actual}, expected {f.sha256}. "
                + _how_to_fix(spec, f))
        actual = hashlib.sha256(data).hexdigest()
        if actual != f.sha256:
            raise DataError(
                f"{where} ({spec.name} {f.name}) is corrupted or not the expected file: sha256 of its "
                f"decompressed content is {actual}, expected {f.sha256}. " + _how_to_fix(spec, f))
    elif f.md5 is not None:
        actual = hashlib.md5(stored if stored is not None else data).hexdigest()
        if actual != f.md5:
            raise DataError(f"{where} ({spec.name} {f.name}) is corrupted: md5 {actual}, expected {f.md5}. "
                            + _how_to_fix(spec, f))
    else:  # pragma: no cover - a registry without hashes is a programming error
        raise DataError(f"the registry has no checksum for {spec.name} {f.name}; refusing to use it "
                        "unverified")


def load_file(spec: DatasetSpec, role: str, data_dir: str | os.PathLike | None = None,
              mirrors: tuple[str, ...] | None = None, download: bool | None = None) -> bytes:
    """The verified, decompressed content of one file of ``spec`` (searching, then downloading)."""
    f = spec.file(role)
    searched = []
    for folder in search_dirs(spec, data_dir):
        for path in (folder / f.name, folder / f.raw_name):
            if path.is_file():
                stored = path.read_bytes() if f.sha256 is None else None
                data = read_bytes(path) if stored is None else stored
                verify(data, spec, f, str(path), stored)
                return data
            searched.append(str(path))
    if download is None:
        download = os.environ.get(ENV_NO_DOWNLOAD, "") in ("", "0")
    if not download:
        raise DataError(f"{spec.name} file {f.name} not found (looked in: {', '.join(searched)}) and "
                        f"downloads are off ({ENV_NO_DOWNLOAD}). " + _how_to_fix(spec, f))
    mirrors = mirrors if mirrors is not None else spec.mirrors
    _, data = download_file(spec, f, cache_dir() / spec.name, mirrors)
    return data


def download_file(spec: DatasetSpec, f: FileSpec, dest_dir: Path, mirrors: tuple[str, ...],
                  timeout: float = TIMEOUT_S) -> tuple[Path, bytes]:
    """Download ``f`` from the first mirror that serves a complete, verified copy into ``dest_dir``.

    Returns (path, decompressed content). Nothing is left in ``dest_dir`` unless verified."""
    dest_dir = Path(dest_dir)
    dest_dir.mkdir(parents=True, exist_ok=True)
    dest = dest_dir / f.name
    failures = []
    for base in mirrors:
        url = base.rstrip("/") + "/" + f.name
        tmp = dest_dir / f".{f.name}.part-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        try:
            with urllib.request.urlopen(url, timeout=timeout) as resp, open(tmp, "wb") as out:
                length = resp.headers.get("Content-Length")
                while chunk := resp.read(1 << 20):
                    out.write(chunk)
            got = tmp.stat().st_size
            if length is not None and got != int(length):
                raise DataError(f"{url}: download incomplete ({got} of {length} bytes)")
            stored = tmp.read_bytes()
            data = read_bytes(tmp) if f.sha256 is not None else stored
            verify(data, spec, f, url, stored)
            os.replace(tmp, dest)
            return dest, data
        except (DataError, OSError, urllib.error.URLError, http.client.HTTPException, ValueError) as exc:
            failures.append(f"{url}: {type(exc).__name__}: {exc}")
        finally:
            tmp.unlink(missing_ok=True)
    raise DataError(f"could not download a verified copy of {spec.name} {f.name}; tried:\n  "
                    + "\n  ".join(failures or ["(no mirrors)"]) + "\n" + _how_to_fix(spec, f))
