"""Search order, checksums before parsing, one-line errors, atomic downloads."""

import gzip
import io
import os
from pathlib import Path
from urllib.error import HTTPError, URLError

import numpy as np
import pytest

from vaelab.config import DataConfig
from vaelab.data import load_dataset, mnist, resolve_data_dirs, sources
from vaelab.errors import DataError


def one_line(err: pytest.ExceptionInfo) -> str:
    msg = str(err.value)
    assert "\n" not in msg
    return msg


# --- where to look -----------------------------------------------------------------------


def test_search_order_is_env_then_cache_and_an_explicit_folder_alone(tmp_path, monkeypatch):
    monkeypatch.setenv("VAELAB_DATA", str(tmp_path / "env"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert resolve_data_dirs() == [tmp_path / "env", tmp_path / "xdg" / "vaelab"]
    assert resolve_data_dirs(tmp_path / "arg") == [tmp_path / "arg"]  # --data-dir wins or fails


def test_search_order_defaults_and_duplicates(tmp_path, monkeypatch):
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("VAELAB_DATA", str(tmp_path / ".cache" / "vaelab"))
    assert resolve_data_dirs() == [tmp_path / ".cache" / "vaelab"]
    monkeypatch.delenv("VAELAB_DATA")
    assert resolve_data_dirs() == [tmp_path / ".cache" / "vaelab"]


def test_empty_search_path_without_download_names_every_place(isolated, monkeypatch):
    env = isolated / "env"
    env.mkdir()
    monkeypatch.setenv("VAELAB_DATA", str(env))
    with pytest.raises(DataError) as err:
        load_dataset(DataConfig(), None, download=False)
    msg = one_line(err)
    assert f"{env} (VAELAB_DATA)" in msg
    assert str(isolated / "xdg" / "vaelab") in msg and "missing" in msg
    assert "download disabled" in msg and "mnist.pkl.gz" in msg and "--data-dir DIR" in msg


def test_an_explicit_data_dir_without_the_data_fails_instead_of_falling_back(isolated, monkeypatch, data_dir):
    """--data-dir names the one place to look: the data in VAELAB_DATA must not stand in."""
    empty = isolated / "empty"
    empty.mkdir()
    monkeypatch.setenv("VAELAB_DATA", str(data_dir))
    with pytest.raises(DataError) as err:
        load_dataset(DataConfig(), empty)
    msg = one_line(err)
    assert f"not found in {empty} (--data-dir)" in msg and "leave --data-dir out" in msg
    assert str(data_dir) not in msg


def test_offline_env_makes_no_network_call(isolated, monkeypatch):
    calls = []
    monkeypatch.setattr(sources, "urlopen", lambda *a, **k: calls.append(a))
    monkeypatch.setenv("VAELAB_OFFLINE", "1")
    with pytest.raises(DataError) as err:
        load_dataset(DataConfig(dataset="frey"))
    assert "VAELAB_OFFLINE=1" in one_line(err) and "frey_rawface.mat" in str(err.value)
    assert calls == []


def test_no_network_fails_fast_and_leaves_no_file(isolated):
    with pytest.raises(DataError) as err:
        load_dataset(DataConfig())
    msg = one_line(err)
    assert "download failed" in msg and "network disabled in tests" in msg
    cache = isolated / "xdg" / "vaelab"
    assert not cache.exists() or list(cache.iterdir()) == []


# --- checksums come before any parsing -----------------------------------------------------


@pytest.fixture
def no_unpickling(monkeypatch):
    """Make any attempt to decompress or unpickle mnist.pkl.gz fail the test."""

    def boom(*args, **kwargs):
        raise AssertionError("mnist.pkl.gz was opened before its checksum was verified")

    monkeypatch.setattr(mnist, "_NumpyUnpickler", boom)
    monkeypatch.setattr(mnist.gzip, "GzipFile", boom)


def test_truncated_pkl_is_refused_unopened(isolated, data_dir, no_unpickling):
    bad = isolated / "bad"
    bad.mkdir()
    with open(data_dir / "mnist.pkl.gz", "rb") as f:
        (bad / "mnist.pkl.gz").write_bytes(f.read(1 << 20))
    with pytest.raises(DataError) as err:
        load_dataset(DataConfig(), bad)
    msg = one_line(err)
    assert "checksum" in msg and str(bad / "mnist.pkl.gz") in msg
    assert "f11bb9e41d6c" in msg and "1048576 bytes" in msg and "delete it" in msg


def test_bad_file_is_reported_not_skipped(isolated, monkeypatch, fake_idx, no_unpickling):
    """A corrupt copy in VAELAB_DATA must not be papered over by a good one further on."""
    bad, good = isolated / "bad", isolated / "xdg" / "vaelab"
    bad.mkdir()
    (bad / "mnist.pkl.gz").write_bytes(b"not mnist at all")
    fake_idx(good)
    monkeypatch.setattr(mnist, "VALID_SIZE", 10)
    monkeypatch.setenv("VAELAB_DATA", str(bad))
    with pytest.raises(DataError, match="checksum mismatch for .*bad/mnist.pkl.gz"):
        load_dataset(DataConfig())
    assert load_dataset(DataConfig(), good).train.x.shape == (20, 784)  # the good set is fine


def test_pkl_without_known_sha256_is_never_unpickled(isolated, monkeypatch, no_unpickling):
    (isolated / "mnist.pkl.gz").write_bytes(b"anything")
    monkeypatch.setitem(sources.KNOWN_FILES, "mnist.pkl.gz", sources.FileSpec(None, None))
    with pytest.raises(DataError, match="no known sha256"):
        load_dataset(DataConfig(), isolated)


def test_unpickler_refuses_os_system(isolated, trust, monkeypatch):
    calls = []
    monkeypatch.setattr(os, "system", lambda cmd: calls.append(cmd))
    # A protocol-0 pickle that calls os.system("echo owned") when loaded naively.
    (isolated / "mnist.pkl.gz").write_bytes(gzip.compress(b"cos\nsystem\n(S'echo owned'\ntR."))
    trust(isolated / "mnist.pkl.gz")
    with pytest.raises(DataError) as err:
        load_dataset(DataConfig(), isolated)
    assert "os.system" in one_line(err) and "refusing" in str(err.value)
    assert calls == []


def test_trusted_but_unreadable_bytes_give_one_line(isolated, trust):
    (isolated / "mnist.pkl.gz").write_bytes(b"\x1f\x8b this is not really gzip")
    trust(isolated / "mnist.pkl.gz")
    with pytest.raises(DataError) as err:
        load_dataset(DataConfig(), isolated)
    assert "could not be read" in one_line(err) and "BadGzipFile" in str(err.value)


# --- download ------------------------------------------------------------------------------


@pytest.fixture
def served(monkeypatch, tmp_path):
    """``served({url: bytes or exception})``: a fake urlopen; returns the list of urls asked."""

    def _serve(pages):
        asked = []

        def fake_urlopen(url, timeout=None):
            asked.append(url)
            assert timeout == sources.TIMEOUT_S
            page = pages.get(url, URLError("unknown host"))
            if isinstance(page, Exception):
                raise page
            return io.BytesIO(page)

        monkeypatch.setattr(sources, "urlopen", fake_urlopen)
        return asked

    return _serve


def register(monkeypatch, name, payload, urls):
    import hashlib

    spec = sources.FileSpec(len(payload), hashlib.sha256(payload).hexdigest(),
                            hashlib.md5(payload).hexdigest(), tuple(urls))
    monkeypatch.setitem(sources.KNOWN_FILES, name, spec)


def test_download_lands_atomically(tmp_path, monkeypatch):
    payload = os.urandom(3 * sources.CHUNK + 17)  # several chunks
    register(monkeypatch, "thing.bin", payload, ["http://a/thing.bin"])
    dest = tmp_path / "cache" / "thing.bin"

    class SlowPage(io.BytesIO):
        def read(self, n=-1):
            assert not dest.exists(), "the final name appeared before the download was checked"
            return super().read(n)

    monkeypatch.setattr(sources, "urlopen", lambda url, timeout=None: SlowPage(payload))
    assert sources.fetch_file("thing.bin", tmp_path / "cache") == dest
    assert dest.read_bytes() == payload
    assert [p.name for p in dest.parent.iterdir()] == ["thing.bin"]  # no .part left behind


def test_bad_download_leaves_nothing_and_tries_every_mirror(tmp_path, monkeypatch, served):
    urls = ["http://a/thing.bin", "http://b/thing.bin", "http://c/thing.bin"]
    register(monkeypatch, "thing.bin", b"the real bytes", urls)
    asked = served({urls[0]: b"the evil bytes", urls[1]: HTTPError(urls[1], 404, "gone", {}, None),
                    urls[2]: b"the real bytes plus more"})
    with pytest.raises(sources._DownloadFailed) as err:
        sources.fetch_file("thing.bin", tmp_path)
    assert asked == urls
    assert "checksum mismatch" in str(err.value) and "HTTP 404" in str(err.value)
    assert list(tmp_path.iterdir()) == []


def test_download_falls_through_to_next_mirror(tmp_path, monkeypatch, served):
    urls = ["http://a/thing.bin", "http://b/thing.bin"]
    register(monkeypatch, "thing.bin", b"payload", urls)
    served({urls[0]: URLError("timed out"), urls[1]: b"payload"})
    assert sources.fetch_file("thing.bin", tmp_path).read_bytes() == b"payload"


def test_mnist_downloads_into_cache_once(isolated, monkeypatch, served, idx_bytes):
    """End to end: nothing on disk, four IDX files served, a dataset comes out of the cache."""

    rng = np.random.default_rng(1)
    pages = {}
    for name, shape in [("train-images-idx3-ubyte.gz", (12, 28, 28)),
                        ("train-labels-idx1-ubyte.gz", (12,)),
                        ("t10k-images-idx3-ubyte.gz", (4, 28, 28)),
                        ("t10k-labels-idx1-ubyte.gz", (4,))]:
        page = idx_bytes(rng.integers(0, 10, shape, dtype=np.uint8))
        url = f"http://mirror/{name}"
        register(monkeypatch, name, page, [url])
        pages[url] = page
    asked = served(pages)
    monkeypatch.setattr(mnist, "VALID_SIZE", 2)
    data = load_dataset(DataConfig(binarize="threshold"))
    assert (len(data.train.x), len(data.valid.x), len(data.test.x)) == (10, 2, 4)
    cache = isolated / "xdg" / "vaelab"
    assert sorted(p.name for p in cache.iterdir()) == sorted(mnist.IDX)
    assert len(asked) == 4
    load_dataset(DataConfig())
    assert len(asked) == 4  # found in the cache the second time


def test_partial_download_keeps_good_files(isolated, monkeypatch, served, idx_bytes):
    """The first file lands, the second has no mirror: the error names the missing one."""

    page = idx_bytes(np.zeros((3, 28, 28), np.uint8))
    register(monkeypatch, "train-images-idx3-ubyte.gz", page, ["http://m/a"])
    served({"http://m/a": page})
    with pytest.raises(DataError) as err:
        load_dataset(DataConfig())
    assert "train-labels-idx1-ubyte.gz" in one_line(err)
    assert (isolated / "xdg" / "vaelab" / "train-images-idx3-ubyte.gz").read_bytes() == page


def test_known_hashes_are_well_formed():
    for name, spec in sources.KNOWN_FILES.items():
        assert spec.sha256 is None or len(spec.sha256) == 64, name
        assert spec.md5 is None or len(spec.md5) == 32, name
        assert all(url.endswith(Path(name).name) for url in spec.urls), name
