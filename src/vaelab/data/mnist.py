"""MNIST, from ``mnist.pkl.gz`` (50k/10k/10k) or the four IDX files (60k/10k).

Sources, in order of preference within a directory:

- ``mnist.pkl.gz``: the classic split used by the VAE literature; images are float32 grey
  levels byte/256, in [0, 0.996].  It is a pickle, so it is opened only after its sha256
  matches, and then with an unpickler that can build numpy arrays and nothing else.
- ``train-images-idx3-ubyte.gz`` and friends: grey = byte/255; the last
  :data:`VALID_SIZE` training images become the validation split, which reproduces the
  pkl's split (its first 50000 training images are the IDX's).  These are also what is
  downloaded when nothing is found.

Binarisation (``cfg.binarize``):

- ``dynamic``: train.x stays grey and the trainer samples it each epoch; valid and test
  are sampled once with ``torch.bernoulli`` under fixed seeds (:data:`VALID_SEED`,
  :data:`TEST_SEED`), so evaluation sets are the same in every run and process;
- ``threshold``: grey > 0.5 everywhere;
- ``seed-paper``: grey > 0 everywhere (what the study did).
"""

from __future__ import annotations

import functools
import gzip
import io
import pickle
import struct
import zlib
from pathlib import Path

import numpy as np
import torch

from ..config import DataConfig
from ..errors import DataError
from . import sources
from .binarize import BINARIZATIONS, DYNAMIC, fixed_sample
from .dataset import Dataset, Split

try:
    from numpy._core.multiarray import _reconstruct
except ImportError:  # numpy < 2
    from numpy.core.multiarray import _reconstruct

PKL = "mnist.pkl.gz"
IDX = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
       "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
VALID_SIZE = 10_000  # IDX: this many images at the end of train become validation
SIDE = 28

# What any parser may raise on malformed bytes; turned into one DataError line.  A
# corrupt length field can make the unpickler ask for an absurd allocation, hence
# MemoryError and OverflowError (found by tests/test_hostile.py).
_PARSE_ERRORS = (OSError, EOFError, zlib.error, struct.error, ValueError, TypeError,
                 KeyError, IndexError, AttributeError, pickle.UnpicklingError,
                 MemoryError, OverflowError)


def mnist_files(data_dir=None, *, download: bool = True) -> list[Path]:
    """The MNIST files to read: mnist.pkl.gz or the four IDX files (DataError if none)."""
    return sources.find_files(
        "MNIST", [(PKL,), IDX], data_dir, download=download, fetch=IDX,
        hint="Put mnist.pkl.gz or the four IDX .gz files (train-images-idx3-ubyte.gz ...)")


def load_mnist(cfg: DataConfig, data_dir=None, *, download: bool = True) -> Dataset:
    paths = mnist_files(data_dir, download=download)
    key = (sources.file_key(paths), VALID_SIZE)
    grey = _grey(key)
    limits = {"train": cfg.train_limit, "valid": cfg.test_limit, "test": cfg.test_limit}
    rule = BINARIZATIONS.get(cfg.binarize)
    splits = {}
    for name, split in grey.items():
        n = limits[name]
        x = rule(split.x[:n], name, lambda name=name: _fixed_sample(key, name))
        splits[name] = Split(x, split.y[:n].clone())
    files = [{"name": p.name, "sha256": sources.KNOWN_FILES[p.name].sha256} for p in paths]
    return Dataset("mnist", splits["train"], splits["valid"], splits["test"], (1, SIDE, SIDE),
                   binary=True, num_classes=10, dynamic=cfg.binarize == DYNAMIC,
                   source={"dataset": "mnist", "files": files})


@functools.lru_cache(maxsize=4)
def _fixed_sample(key, split: str) -> torch.Tensor:
    """The fixed-seed Bernoulli sample of a whole evaluation split, once per process."""
    return fixed_sample(_grey(key)[split].x, split)


# --- reading --------------------------------------------------------------------------


@functools.lru_cache(maxsize=2)
def _grey(key) -> dict[str, Split]:
    """Grey-level splits of the files named in ``key``, parsed once per process.

    Callers must slice and clone (or compute new tensors) before handing them out.
    """
    file_ids, valid_size = key
    paths = [Path(path) for path, _, _ in file_ids]
    if len(paths) == 1:
        return _read_pkl(paths[0])
    return _read_idx(paths, valid_size)


def _read_pkl(path: Path) -> dict[str, Split]:
    data = sources.read_verified(path)
    if not sources.sha256_known(path.name):  # never unpickle what no sha256 vouches for
        raise DataError(f"{path}: no known sha256 to check it against, so it is not opened; "
                        f"use the four IDX files instead.")
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(data)) as f:
            obj = _NumpyUnpickler(f, encoding="latin1").load()
        if not isinstance(obj, (tuple, list)) or len(obj) != 3:
            raise ValueError("expected three (images, labels) splits")
        return {name: _pkl_split(pair) for name, pair in zip(("train", "valid", "test"), obj)}
    except _PARSE_ERRORS as err:
        raise DataError(f"{path} could not be read ({type(err).__name__}: {err}); "
                        f"replace it with a good copy.") from None


def _pkl_split(pair) -> Split:
    x, y = pair
    if not (isinstance(x, np.ndarray) and isinstance(y, np.ndarray)):
        raise ValueError("a split is not a pair of numpy arrays")
    if x.ndim != 2 or x.shape[1] != SIDE * SIDE or y.shape != (len(x),):
        raise ValueError(f"images {x.shape} and labels {y.shape} are not (N, 784) and (N,)")
    if len(x) and not (x.min() >= 0 and x.max() <= 1 and y.min() >= 0 and y.max() <= 9):
        raise ValueError("grey levels outside [0, 1] or labels outside 0..9")
    return Split(torch.from_numpy(x.astype(np.float32, copy=False)),
                 torch.from_numpy(y.astype(np.int64, copy=False)))


class _NumpyUnpickler(pickle.Unpickler):
    """Builds numpy arrays and nothing else: every other global is refused.

    ``numpy.core`` is the name numpy 1.x wrote; numpy 2 writes ``numpy._core``.  The
    objects are returned directly, so the deprecated module is never imported.
    """

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
        ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
    }

    def find_class(self, module: str, name: str):
        try:
            return self.ALLOWED[(module, name)]
        except KeyError:
            raise DataError(f"mnist.pkl.gz refers to {module}.{name}, which a data file has "
                            f"no business loading; refusing to open it.") from None


def _read_idx(paths: list[Path], valid_size: int) -> dict[str, Split]:
    train_x, train_y, test_x, test_y = (
        _parse_idx(p, sources.read_verified(p), images=i % 2 == 0) for i, p in enumerate(paths))
    for (xs, ys), (px, py) in (((train_x, train_y), paths[:2]), ((test_x, test_y), paths[2:])):
        if len(xs) != len(ys):
            raise DataError(f"{px.name} holds {len(xs)} images but {py.name} {len(ys)} labels; "
                            f"replace them with matching files.")
    if len(train_x) <= valid_size:
        raise DataError(f"{paths[0]} holds {len(train_x)} images, too few to keep the last "
                        f"{valid_size} for validation; replace it with the full file.")
    cut = len(train_x) - valid_size
    return {"train": _idx_split(train_x[:cut], train_y[:cut]),
            "valid": _idx_split(train_x[cut:], train_y[cut:]),
            "test": _idx_split(test_x, test_y)}


def _idx_split(x: np.ndarray, y: np.ndarray) -> Split:
    grey = x.astype(np.float32) / np.float32(255.0)  # (N, 784) in [0, 1]
    return Split(torch.from_numpy(grey), torch.from_numpy(y.astype(np.int64)))


def _parse_idx(path: Path, data: bytes, *, images: bool) -> np.ndarray:
    """Images (N, 784) or labels (N,) as uint8 from a gzipped IDX file.

    IDX: big-endian int32 magic (2051 images, 2049 labels), then the sizes of each
    dimension as int32, then the bytes.
    """
    magic, header = (2051, ">IIII") if images else (2049, ">II")
    try:
        raw = gzip.decompress(data)
        found, n, *shape = struct.unpack_from(header, raw)
    except _PARSE_ERRORS as err:
        raise DataError(f"{path} is not a gzipped IDX file ({type(err).__name__}: {err}); "
                        f"replace it with a good copy.") from None
    if found != magic:
        raise DataError(f"{path} is not an MNIST {'image' if images else 'label'} file (magic "
                        f"{found}, expected {magic}); check the file name or replace it.")
    if images and shape != [SIDE, SIDE]:
        raise DataError(f"{path} holds {shape[0]}x{shape[1]} images, not 28x28; replace it.")
    body = np.frombuffer(raw, np.uint8, offset=struct.calcsize(header))
    width = SIDE * SIDE if images else 1
    if body.size != n * width:
        raise DataError(f"{path} announces {n} items but holds {body.size} bytes of them, "
                        f"not {n * width}; the file is truncated or corrupt: replace it.")
    if not images and n and body.max() > 9:
        raise DataError(f"{path} holds labels above 9; replace it.")
    return body.reshape(n, SIDE * SIDE) if images else body
