"""Frey Faces: 1965 grey 28x20 frames of Brendan Frey's face (Kingma & Welling 2014, sec. 5).

Read from Sam Roweis's ``frey_rawface.mat``: one variable ``ff``, uint8, shape (560, 1965),
one image per column.  Grey levels are byte/255 and stay continuous: the Gaussian decoder
models them, so ``cfg.binarize`` does not apply (binary=False, dynamic=False).

Split: a fixed permutation (``torch.Generator`` seeded with :data:`SPLIT_SEED`) of the
1965 frames; the first :data:`TRAIN_SIZE` (90%) train, the other 196 test.  Frey has no
separate validation set: ``valid`` is the test split (the same tensors' values), so early
stopping on it reports an optimistic test number; say so when you use it.
"""

from __future__ import annotations

import functools
import io
from pathlib import Path

import numpy as np
import torch

from ..config import DataConfig
from ..errors import DataError
from ..registry import DATA_FILES, DATASETS
from . import sources
from .dataset import Dataset, Split

FILE = "frey_rawface.mat"
HEIGHT, WIDTH, COUNT = 28, 20, 1965
TRAIN_SIZE = 1769  # 90% of 1965, rounded up
SPLIT_SEED = 0


@DATA_FILES.register("frey")
def frey_files(data_dir=None, *, download: bool = True) -> list[Path]:
    """[frey_rawface.mat] (DataError if it is nowhere)."""
    return sources.find_files("Frey Faces", [(FILE,)], data_dir, download=download,
                              fetch=(FILE,), hint=f"Put {FILE}")


@DATASETS.register("frey")
def load_frey(cfg: DataConfig, data_dir=None, *, download: bool = True) -> Dataset:
    """Frey Faces, 1769 train / 196 test; ``valid`` equals ``test`` (there is no other)."""
    (path,) = frey_files(data_dir, download=download)
    train, test = _splits(sources.file_key([path]))
    test = test.head(cfg.test_limit)
    return Dataset("frey", train.head(cfg.train_limit), test, Split(test.x.clone(), test.y.clone()),
                   (1, HEIGHT, WIDTH), binary=False, num_classes=0, dynamic=False)


@functools.lru_cache(maxsize=2)
def _splits(key) -> tuple[Split, Split]:
    path = Path(key[0][0])
    x = torch.from_numpy(_read(path))  # (1965, 560)
    order = torch.randperm(COUNT, generator=torch.Generator().manual_seed(SPLIT_SEED))
    no_labels = torch.full((COUNT,), -1, dtype=torch.int64)
    return (Split(x[order[:TRAIN_SIZE]], no_labels[:TRAIN_SIZE]),
            Split(x[order[TRAIN_SIZE:]], no_labels[TRAIN_SIZE:]))


def _read(path: Path) -> np.ndarray:
    """(1965, 560) float32 grey levels in [0, 1], frames in the file's order."""
    import scipy.io  # here, not at the top: it costs 0.15 s that MNIST runs need not pay

    data = sources.read_verified(path)
    try:
        ff = scipy.io.loadmat(io.BytesIO(data)).get("ff")
    except (ValueError, TypeError, OSError, EOFError, KeyError, IndexError,
            NotImplementedError, MemoryError, OverflowError, scipy.io.matlab.MatReadError) as err:
        raise DataError(f"{path} is not a readable MATLAB file ({type(err).__name__}: {err}); "
                        f"replace it with a good copy.") from None
    if ff is None:
        raise DataError(f"{path} has no variable 'ff'; it is not frey_rawface.mat: replace it.")
    if ff.shape != (HEIGHT * WIDTH, COUNT) or ff.dtype != np.uint8:
        raise DataError(f"{path}: 'ff' is {ff.dtype} {ff.shape}, expected uint8 "
                        f"{(HEIGHT * WIDTH, COUNT)}; replace it with frey_rawface.mat.")
    # Column j is frame j; row-major 28x20 within it, so ff.T.reshape(-1, 28, 20) shows faces.
    return np.ascontiguousarray(ff.T, dtype=np.float32) / np.float32(255.0)
