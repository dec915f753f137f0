"""Frey Faces: 1965 grey 28x20 frames of Brendan Frey's face (Kingma & Welling 2014, sec. 5).

Read from Sam Roweis's ``frey_rawface.mat``: one variable ``ff``, uint8, shape (560, 1965),
one image per column.  Grey levels are byte/255 and stay continuous: the Gaussian decoder
models them, so ``cfg.binarize`` does not apply (binary=False, dynamic=False).

Split: a fixed permutation (``torch.Generator`` seeded with :data:`SPLIT_SEED`) of the
1965 frames; the first :data:`TRAIN_SIZE` (90%, the study's hold-out) are the training
faces, the other 196 the test set.  The study has no validation set; vaelab holds out the
last :data:`VALID_SIZE` of the training faces as one, so the learning-rate selection, the
learning curves and any early stopping never see a test face: models train on the first
1592 faces.
"""

from __future__ import annotations

import functools
import io
from pathlib import Path

import numpy as np
import scipy.io
import torch

from ..config import DataConfig
from ..errors import DataError
from . import sources
from .dataset import Dataset, Split

FILE = "frey_rawface.mat"
HEIGHT, WIDTH, COUNT = 28, 20, 1965
TRAIN_SIZE = 1769  # 90% of 1965, rounded up
VALID_SIZE = 177  # 10% of the training faces, held out for validation
SPLIT_SEED = 0


def frey_files(data_dir=None, *, download: bool = True) -> list[Path]:
    """[frey_rawface.mat] (DataError if it is nowhere)."""
    return sources.find_files("Frey Faces", [(FILE,)], data_dir, download=download,
                              fetch=(FILE,), hint=f"Put {FILE}")


def load_frey(cfg: DataConfig, data_dir=None, *, download: bool = True) -> Dataset:
    """Frey Faces: 1592 train / 177 valid (both from the study's 1769 training faces) / 196 test."""
    (path,) = frey_files(data_dir, download=download)
    train, valid, test = _splits(sources.file_key([path]))
    return Dataset("frey", train.head(cfg.train_limit), valid.head(cfg.test_limit), test.head(cfg.test_limit),
                   (1, HEIGHT, WIDTH), binary=False, num_classes=0, dynamic=False,
                   source={"dataset": "frey", "files": [{"name": FILE, "sha256": sources.KNOWN_FILES[FILE].sha256}]})


@functools.lru_cache(maxsize=2)
def _splits(key) -> tuple[Split, Split, Split]:
    path = Path(key[0][0])
    x = torch.from_numpy(_read(path))  # (1965, 560)
    order = torch.randperm(COUNT, generator=torch.Generator().manual_seed(SPLIT_SEED))
    no_labels = torch.full((COUNT,), -1, dtype=torch.int64)
    fit = TRAIN_SIZE - VALID_SIZE
    parts = (order[:fit], order[fit:TRAIN_SIZE], order[TRAIN_SIZE:])
    return tuple(Split(x[idx], no_labels[idx]) for idx in parts)


def _read(path: Path) -> np.ndarray:
    """(1965, 560) float32 grey levels in [0, 1], frames in the file's order."""
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
