"""Fixtures for the data tests: an isolated search path, trusted fake files, fake IDX sets."""

import gzip
import hashlib
import struct
from urllib.error import URLError

import numpy as np
import pytest

from vaelab.data import sources


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """No VAELAB_DATA, a private cache dir under tmp_path, and no network at all.

    Without this a developer's real data (or a CI's VAELAB_DATA) would be found and the
    "not found" tests would pass or fail by accident.
    """
    monkeypatch.delenv("VAELAB_DATA", raising=False)
    monkeypatch.delenv("VAELAB_OFFLINE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))

    def no_network(url, timeout=None):
        raise URLError("network disabled in tests")

    monkeypatch.setattr(sources, "urlopen", no_network)
    return tmp_path


@pytest.fixture
def trust(monkeypatch):
    """``trust(path)``: make KNOWN_FILES expect exactly the bytes now in ``path``."""

    def _trust(path, urls=()):
        data = path.read_bytes()
        spec = sources.FileSpec(len(data), hashlib.sha256(data).hexdigest(),
                                hashlib.md5(data).hexdigest(), tuple(urls))
        monkeypatch.setitem(sources.KNOWN_FILES, path.name, spec)
        return spec

    return _trust


def _idx_bytes(array: np.ndarray) -> bytes:
    magic = 2051 if array.ndim == 3 else 2049
    header = struct.pack(">" + "I" * (1 + array.ndim), magic, *array.shape)
    return gzip.compress(header + array.astype(np.uint8).tobytes())


@pytest.fixture
def idx_bytes():
    """``idx_bytes(array)``: a gzipped IDX file of uint8 images (N, 28, 28) or labels (N,)."""
    return _idx_bytes


@pytest.fixture
def fake_idx(trust):
    """``fake_idx(folder, n_train, n_test)`` writes four small trusted IDX files.

    Returns the raw arrays so tests can check exactly where each image went.
    """

    def _write(folder, n_train=30, n_test=7, seed=0):
        rng = np.random.default_rng(seed)
        arrays = {
            "train-images-idx3-ubyte.gz": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
            "train-labels-idx1-ubyte.gz": rng.integers(0, 10, n_train, dtype=np.uint8),
            "t10k-images-idx3-ubyte.gz": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
            "t10k-labels-idx1-ubyte.gz": rng.integers(0, 10, n_test, dtype=np.uint8),
        }
        folder.mkdir(parents=True, exist_ok=True)
        for name, array in arrays.items():
            (folder / name).write_bytes(_idx_bytes(array))
            trust(folder / name)
        return arrays

    return _write
