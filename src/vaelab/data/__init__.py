"""Datasets (MNIST, Frey Faces), binarisation and input corruption.

The package lists its datasets here, by the name a config gives them: :data:`DATASETS`
(name -> loader) and :data:`DATA_FILES` (name -> the files it reads); the noises of the
denoising criterion are listed in :mod:`.noise`.  Where data files are looked for, and how
they are checked and downloaded, is described in :mod:`vaelab.data.sources`.
"""

from __future__ import annotations

import os

from ..config import DataConfig
from ..registry import Registry
from .dataset import DataInfo, Dataset, Split, binarize_dynamic
from .frey import frey_files, load_frey
from .mnist import load_mnist, mnist_files
from .noise import NOISES, corrupt
from .sources import read_verified, resolve_data_dirs, sha256_known

DATASETS: Registry = Registry("dataset", {"mnist": load_mnist, "frey": load_frey})
DATA_FILES: Registry = Registry("dataset", {"mnist": mnist_files, "frey": frey_files})

__all__ = ["DATASETS", "DATA_FILES", "NOISES", "DataInfo", "Dataset", "Split", "binarize_dynamic", "check_data",
           "corrupt", "load_dataset", "resolve_data_dirs"]


def load_dataset(cfg: DataConfig, data_dir: str | os.PathLike | None = None, *,
                 download: bool = True) -> Dataset:
    """Load ``cfg.dataset``, searching ``data_dir``, then ``$VAELAB_DATA``, then the cache.

    Raises :class:`~vaelab.errors.DataError` for missing or corrupt files and
    :class:`~vaelab.errors.ConfigError` for an unknown dataset name.
    """
    loader = DATASETS.get(cfg.dataset)
    return loader(cfg, data_dir, download=download)


def check_data(dataset: str, data_dir: str | os.PathLike | None = None, *, download: bool = True) -> None:
    """Find ``dataset``'s files (downloading them if allowed) and check their size and
    sha256, without parsing them: a sweep calls this once before any run starts, so a
    missing or corrupt file is one :class:`~vaelab.errors.DataError`, not one per run."""
    for path in DATA_FILES.get(dataset)(data_dir, download=download):
        if sha256_known(path.name):
            read_verified(path)
