"""Where data files come from: search order, checksums, download.

Search order (the first directory holding a complete set of a dataset's files wins):

1. the ``data_dir`` argument (the CLI's ``--data-dir``): when given, the only place looked
   in (an explicit folder wins or fails; nothing is downloaded);
2. the directory in the ``VAELAB_DATA`` environment variable;
3. the user cache directory, ``$XDG_CACHE_HOME/vaelab`` or ``~/.cache/vaelab``.

Every file is checked against :data:`KNOWN_FILES` (size, sha256, and md5 where one is
published) before a single byte of it is parsed: a pickle can run code, and a truncated
file may parse into garbage that trains without complaint.  A file that fails the check
is reported, never skipped in favour of a copy in a later directory, because a user must
learn that their copy is bad.

When no directory has the files and downloading is allowed (``download=True`` and the
environment variable ``VAELAB_OFFLINE`` is not ``1``), they are fetched into the cache
directory: streamed to a temporary file beside the final one, checked, then renamed over
it with :func:`os.replace`, so an interrupted or bad download never leaves a file under
the real name.  Each connection and read times out after :data:`TIMEOUT_S` seconds so
that a machine without network fails fast.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence
from urllib.error import HTTPError, URLError
from urllib.request import urlopen

from ..errors import DataError

TIMEOUT_S = 10.0  # per connection attempt and per read
MAX_DOWNLOAD_S = 300.0  # a whole file; stops a server that trickles bytes forever
CHUNK = 1 << 20


@dataclass(frozen=True)
class FileSpec:
    """What a good copy of a file looks like; ``None`` means not known."""

    size: int | None
    sha256: str | None
    md5: str | None = None
    urls: tuple[str, ...] = ()


_MNIST_MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)


def _idx(name: str, size: int, sha256: str, md5: str) -> FileSpec:
    return FileSpec(size, sha256, md5, tuple(m + name for m in _MNIST_MIRRORS))


# Sizes and sha256 of the IDX files: tensorflow/datasets,
# tensorflow_datasets/url_checksums/mnist.txt.  Their md5: pytorch/vision,
# torchvision/datasets/mnist.py (MNIST.resources).  mnist.pkl.gz and frey_rawface.mat:
# ../shared/data/SOURCES.md.  No canonical copy of mnist.pkl.gz can be downloaded (the
# deeplearning.net file is gone and differs from ours byte for byte).  The Frey hash is
# that of a copy not checked against the NYU original, so a download from NYU that
# differs from it is refused rather than trusted.
KNOWN_FILES: dict[str, FileSpec] = {
    "mnist.pkl.gz": FileSpec(
        17051982, "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"),
    "train-images-idx3-ubyte.gz": _idx(
        "train-images-idx3-ubyte.gz", 9912422,
        "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
        "f68b3c2dcbeaaa9fbdd348bbdeb94873"),
    "train-labels-idx1-ubyte.gz": _idx(
        "train-labels-idx1-ubyte.gz", 28881,
        "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
        "d53e105ee54ea40749a09fcbcd1e9432"),
    "t10k-images-idx3-ubyte.gz": _idx(
        "t10k-images-idx3-ubyte.gz", 1648877,
        "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
        "9fb629c4189551a2d022fa330f9573f3"),
    "t10k-labels-idx1-ubyte.gz": _idx(
        "t10k-labels-idx1-ubyte.gz", 4542,
        "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
        "ec29112dd5afa0611ce80d1b7f02629c"),
    "frey_rawface.mat": FileSpec(
        1100584, "265a83a23adb081755cd3de375509828e690324d1d60f076b8ecebc840d59c64",
        urls=("https://cs.nyu.edu/~roweis/data/frey_rawface.mat",)),
}


# --- where to look ----------------------------------------------------------------


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "vaelab"


def _labelled_dirs(data_dir: str | os.PathLike | None) -> list[tuple[Path, str]]:
    if data_dir is not None and str(data_dir) != "":
        return [(Path(data_dir).expanduser(), "--data-dir")]
    cands = [(os.environ.get("VAELAB_DATA"), "VAELAB_DATA"), (cache_dir(), "cache")]
    out: list[tuple[Path, str]] = []
    for path, label in cands:
        if path is None or str(path) == "":
            continue
        path = Path(path).expanduser()
        if all(path.resolve() != seen.resolve() for seen, _ in out):
            out.append((path, label))
    return out


def resolve_data_dirs(data_dir: str | os.PathLike | None = None) -> list[Path]:
    """The directories searched for data files, in order (see the module docstring)."""
    return [path for path, _ in _labelled_dirs(data_dir)]


def find_files(what: str, choices: Sequence[Sequence[str]], data_dir: str | os.PathLike | None,
               *, download: bool, fetch: Sequence[str], hint: str) -> list[Path]:
    """Paths of the first complete set of files in ``choices`` found in the search order.

    Directories come first, then the choices within one, so a ``--data-dir`` holding any
    complete set always wins.  With nothing found, ``fetch`` (one of the choices) is
    downloaded into the cache directory, or a :class:`DataError` lists every place searched.
    """
    dirs = _labelled_dirs(data_dir)
    for folder, _ in dirs:
        for names in choices:
            paths = [folder / name for name in names]
            if all(p.is_file() for p in paths):
                return paths
    places = ", ".join(f"{p} ({label}{'' if p.is_dir() else ', missing'})" for p, label in dirs)
    if data_dir is not None and str(data_dir) != "":
        raise DataError(f"{what} not found in {places}. {hint} there, or leave --data-dir out to search "
                        f"VAELAB_DATA and the cache (and download).")
    if not download:
        why = "download disabled"
    elif os.environ.get("VAELAB_OFFLINE") == "1":
        why = "download skipped (VAELAB_OFFLINE=1)"
    elif not fetch:
        why = "no download source known"
    else:
        try:
            return [fetch_file(name, cache_dir()) for name in fetch]
        except _DownloadFailed as err:
            why = f"download failed ({err})"
    raise DataError(f"{what} not found: looked in {places}; {why}. {hint} in a folder and point "
                    f"VAELAB_DATA at it (export VAELAB_DATA=DIR), or pass --data-dir DIR.")


# --- checking -----------------------------------------------------------------------


def _mismatch(path: Path, data: bytes, spec: FileSpec) -> str | None:
    """A description of how ``data`` differs from ``spec``, or None when it matches."""
    sha = hashlib.sha256(data).hexdigest()
    bad = (spec.size is not None and len(data) != spec.size) or (
        spec.sha256 is not None and sha != spec.sha256) or (
        spec.md5 is not None and hashlib.md5(data).hexdigest() != spec.md5)
    if not bad:
        return None
    want = spec.sha256[:12] if spec.sha256 else f"md5 {spec.md5}"
    return (f"checksum mismatch for {path}: sha256 {sha[:12]}... ({len(data)} bytes), "
            f"expected {want}... ({spec.size} bytes)")


def read_verified(path: Path) -> bytes:
    """The bytes of ``path`` after checking them against :data:`KNOWN_FILES`.

    Reading once and parsing the same bytes means what was checked is what is parsed.
    """
    spec = KNOWN_FILES.get(path.name, FileSpec(None, None))
    try:
        data = path.read_bytes()
    except OSError as err:
        raise DataError(f"cannot read {path}: {err.strerror or err}") from None
    problem = _mismatch(path, data, spec)
    if problem:
        raise DataError(f"{problem}; the file is truncated or corrupt: delete it and "
                        f"download it again, or replace it with a good copy.")
    return data


def sha256_known(name: str) -> bool:
    return KNOWN_FILES.get(name, FileSpec(None, None)).sha256 is not None


def file_key(paths: Sequence[Path]) -> tuple[tuple[str, int, int], ...]:
    """Identity of files on disk for caching: resolved path, size, mtime in ns."""
    out = []
    for p in paths:
        st = p.stat()
        out.append((str(p.resolve()), st.st_size, st.st_mtime_ns))
    return tuple(out)


# --- download -----------------------------------------------------------------------


class _DownloadFailed(Exception):
    pass


def fetch_file(name: str, dest_dir: Path) -> Path:
    """``dest_dir/name``, downloaded from the first mirror that yields a good copy.

    A file already there is kept (it is checked when read), so a download interrupted
    after some files of a set resumes with the missing ones.
    """
    dest = dest_dir / name
    if dest.is_file():
        return dest
    spec = KNOWN_FILES[name]
    try:
        dest_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise _DownloadFailed(f"cannot create {dest_dir}: {err.strerror or err}") from None
    reasons: list[str] = []
    for url in spec.urls:
        try:
            _download(url, dest, spec)
            return dest
        except _DownloadFailed as err:
            if str(err) not in reasons:
                reasons.append(str(err))
    raise _DownloadFailed(f"{name}: " + "; ".join(reasons or ["no mirror known"]))


def _download(url: str, dest: Path, spec: FileSpec) -> None:
    fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    tmp = Path(tmp_name)
    try:
        sha, md5, size = hashlib.sha256(), hashlib.md5(), 0
        start = time.monotonic()
        limit = spec.size + 1 if spec.size is not None else None
        with os.fdopen(fd, "wb") as out, urlopen(url, timeout=TIMEOUT_S) as resp:
            while chunk := resp.read(CHUNK):
                sha.update(chunk)
                md5.update(chunk)
                out.write(chunk)
                size += len(chunk)
                if limit is not None and size >= limit:
                    break  # more than a good copy holds; the check below fails it
                if time.monotonic() - start > MAX_DOWNLOAD_S:
                    raise _DownloadFailed(f"{url}: slower than {MAX_DOWNLOAD_S:.0f} s")
            out.flush()
            os.fsync(out.fileno())
        if ((spec.size is not None and size != spec.size)
                or (spec.sha256 is not None and sha.hexdigest() != spec.sha256)
                or (spec.md5 is not None and md5.hexdigest() != spec.md5)):
            raise _DownloadFailed(f"{url}: checksum mismatch (sha256 {sha.hexdigest()[:12]}..., "
                                  f"{size} bytes)")
        os.replace(tmp, dest)
    except HTTPError as err:
        raise _DownloadFailed(f"{url}: HTTP {err.code}") from None
    except URLError as err:
        raise _DownloadFailed(f"cannot connect: {_one_line(err.reason)}") from None
    except (OSError, http.client.HTTPException, ValueError) as err:
        raise _DownloadFailed(f"{url}: {type(err).__name__}: {_one_line(err)}") from None
    finally:
        tmp.unlink(missing_ok=True)


def _one_line(obj: object) -> str:
    return " ".join(str(obj).split())
