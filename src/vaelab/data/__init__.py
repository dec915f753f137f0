"""Datasets: the built-in ones by name, anyone's by path; binarisation and input corruption.

The package lists its datasets here, by the name a config gives them (:data:`DATASETS`:
name -> a dataset part with ``load`` and ``files``; installed plugins add theirs, see
:mod:`vaelab.registry`).  A ``data.dataset`` that names none is a path, read by
:mod:`.formats` (an ``.npz`` file or an image folder).  Binarisation rules are in
:mod:`.binarize`, the noises of the denoising criterion in :mod:`.noise`.  Where data files
are looked for, and how they are checked and downloaded, is described in
:mod:`vaelab.data.sources`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..config import DataConfig
from ..errors import ConfigError
from ..registry import Registry
from .binarize import BINARIZATIONS, binarize_dynamic
from .dataset import DataInfo, Dataset, Split, tensor_sha256
from .formats import FORMATS, find_format, fingerprint, load_path, looks_like_path
from .frey import frey_files, load_frey
from .mnist import load_mnist, mnist_files
from .noise import NOISES, corrupt
from .sources import read_verified, resolve_data_dirs, sha256_known


@dataclass(frozen=True)
class BuiltinDataset:
    """A dataset vaelab knows by name: how to load it, and which files it reads (checked
    once before a sweep starts)."""

    load: Callable[..., Dataset]  # (cfg, data_dir, *, download) -> Dataset
    files: Callable[..., list[Path]]  # (data_dir, *, download) -> the files, found or downloaded


# A plugin's dataset is such an object, or a bare loader ``(cfg, data_dir, *, download) -> Dataset``.
DATASETS: Registry = Registry("dataset", {"mnist": BuiltinDataset(load_mnist, mnist_files),
                                          "frey": BuiltinDataset(load_frey, frey_files)}, plugins="dataset")

__all__ = ["BINARIZATIONS", "DATASETS", "FORMATS", "NOISES", "DataInfo", "Dataset", "Split", "binarize_dynamic",
           "check_data", "corrupt", "fingerprint", "find_format", "is_path", "load_dataset", "resolve_data_dirs",
           "tensor_sha256"]


def is_path(dataset: str) -> bool:
    """Whether ``data.dataset`` is a path rather than a dataset's name."""
    return dataset not in DATASETS and looks_like_path(dataset)


def _part(dataset: str):
    try:
        return DATASETS.get(dataset)
    except ConfigError as err:
        raise ConfigError(f"{err}, or the path of an .npz file or an image folder") from None


def load_dataset(cfg: DataConfig, data_dir: str | os.PathLike | None = None, *,
                 download: bool = True, binary: bool | None = None) -> Dataset:
    """Load ``cfg.dataset``: a built-in or plugin dataset by name (searching ``data_dir``,
    else ``$VAELAB_DATA`` then the cache), or a dataset by path.  ``binary``: whether the
    model's likelihood needs {0, 1} pixels (None: as the data comes); a dataset by path
    follows it, the built-ins have their own (MNIST binary, Frey Faces grey).

    Raises :class:`~vaelab.errors.DataError` for missing or corrupt data and
    :class:`~vaelab.errors.ConfigError` for an unknown dataset name.
    """
    if is_path(cfg.dataset):
        return load_path(cfg, binary=binary)
    part = _part(cfg.dataset)
    return getattr(part, "load", part)(cfg, data_dir, download=download)


def check_data(dataset: str, data_dir: str | os.PathLike | None = None, *, download: bool = True) -> None:
    """Find ``dataset``'s files (downloading them if allowed) and check their size and
    sha256, without parsing them: a sweep calls this once before any run starts, so a
    missing or corrupt file is one :class:`~vaelab.errors.DataError`, not one per run."""
    if is_path(dataset):
        find_format(dataset)
        return
    files = getattr(_part(dataset), "files", None)
    for path in files(data_dir, download=download) if files is not None else []:
        if sha256_known(path.name):
            read_verified(path)
