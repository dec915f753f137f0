"""Datasets by path: your own images, as an ``.npz`` file or a folder of image files.

``data.dataset: PATH`` (``--dataset PATH``, ``vaelab.train(data=PATH)``) reads

* an **.npz** file with ``x_train`` and ``x_test``, optionally ``x_valid``, ``y_train``,
  ``y_valid``, ``y_test``: images ``(N, H, W)`` or ``(N, C, H, W)``, ``uint8`` 0-255 or
  float in [0, 1]; labels non-negative integers ``(N,)``, the classes being 0 ..
  max(y_train), given for every split or none;
* a **folder** with ``train/`` and ``test/`` (optionally ``valid/``) subfolders, each holding
  image files, or class subfolders of image files whose names are the labels (sorted, as
  torchvision's ImageFolder numbers them); grey or RGB, every image the same size.

Without a validation split, :data:`HOLDOUT_FRACTION` of the training images, picked by a
permutation under the fixed seed :data:`HOLDOUT_SEED`, are held out as one (the rest keep
their order), and the dataset's ``source["note"]`` says so.

Pixels under a Bernoulli decoder (the likelihood's ``binary``) must be 0 or 1: grey data
is then binarised by ``data.binarize`` (:mod:`.binarize`); under any other likelihood the
grey levels stay as they are.  ``model.likelihood: auto`` means Bernoulli for data that is
binary already and Gaussian otherwise.

The file's sha256 (or, for a folder, the sha256 of its manifest: every image's path and
sha256) is recorded with each run (``source``); whatever reloads a run checks it first
(:func:`fingerprint`).  Anything malformed (missing or unknown keys, ragged shapes, NaN,
values out of range, labels beyond the classes, an empty split) is one :class:`DataError`
line, before anything is written.
"""

from __future__ import annotations

import functools
import hashlib
import io
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from ..errors import DataError
from ..registry import Registry
from .binarize import BINARIZATIONS, DYNAMIC, fixed_sample
from .dataset import Dataset, Split

HOLDOUT_FRACTION, HOLDOUT_SEED = 0.1, 0
SPLITS = ("train", "valid", "test")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".pgm", ".ppm", ".pbm")
NPZ_KEYS = tuple(f"{v}_{s}" for s in SPLITS for v in "xy")


@dataclass(frozen=True)
class Grey:
    """What a format reads: grey levels in [0, 1], flattened, per split (valid may be None)."""

    x: dict[str, torch.Tensor | None]  # split -> (N, C*H*W) float32
    y: dict[str, torch.Tensor | None]  # split -> (N,) int64, or None without labels
    image_shape: tuple[int, int, int]
    classes: list[str]  # label names (folder), or "0".."K-1" (npz); [] without labels


# --- the two formats ----------------------------------------------------------------------


def _fail(path: Path, msg: str) -> None:
    raise DataError(f"dataset {path}: {msg}")


def _images(path: Path, name: str, arr: np.ndarray) -> tuple[torch.Tensor, tuple[int, int, int]]:
    """One split's array -> (N, D) float32 in [0, 1] and its (C, H, W)."""
    if arr.ndim == 4 and arr.shape[1] > 4 and arr.shape[3] in (1, 3, 4):
        _fail(path, f"{name} has shape {arr.shape}, which looks like (N, H, W, C); store images as (N, C, H, W) "
                    f"(numpy: x.transpose(0, 3, 1, 2))")
    if arr.ndim not in (3, 4):
        _fail(path, f"{name} has shape {arr.shape}; images must be (N, H, W) or (N, C, H, W)")
    if arr.shape[0] == 0:
        _fail(path, f"{name} is empty (0 images)")
    shape = (1, *arr.shape[1:]) if arr.ndim == 3 else tuple(arr.shape[1:])
    if arr.dtype == np.uint8:
        x = arr.astype(np.float32) / np.float32(255.0)
    elif arr.dtype == np.bool_:
        x = arr.astype(np.float32)
    elif np.issubdtype(arr.dtype, np.floating):
        x = arr.astype(np.float32)
        if not np.isfinite(x).all():
            _fail(path, f"{name} holds NaN or infinite values")
        if x.min() < 0 or x.max() > 1:
            _fail(path, f"{name} holds values in [{x.min():g}, {x.max():g}]; float images must lie in [0, 1] "
                        f"(uint8 images are divided by 255)")
    else:
        _fail(path, f"{name} is {arr.dtype}; images must be uint8 (0-255) or float in [0, 1]")
    return torch.from_numpy(np.ascontiguousarray(x).reshape(len(x), -1)), shape


def _labels(path: Path, name: str, arr: np.ndarray, n: int) -> torch.Tensor:
    if arr.shape != (n,):
        _fail(path, f"{name} has shape {arr.shape}, expected ({n},): one label per image")
    if not np.issubdtype(arr.dtype, np.integer):
        _fail(path, f"{name} is {arr.dtype}; labels must be integers 0, 1, ...")
    if n and arr.min() < 0:
        _fail(path, f"{name} holds a negative label ({arr.min()}); labels are 0, 1, ...")
    return torch.from_numpy(arr.astype(np.int64))


def read_npz(path: Path, data: bytes) -> Grey:
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
        raise DataError(f"dataset {path}: not a readable .npz file ({type(err).__name__}: {err}); "
                        f"write it with numpy.savez") from None
    unknown = sorted(set(arrays) - set(NPZ_KEYS))
    if unknown:
        _fail(path, f"unknown key(s) {', '.join(unknown)}; an .npz dataset holds x_train, x_test and optionally "
                    f"x_valid, y_train, y_valid, y_test")
    for key in ("x_train", "x_test"):
        if key not in arrays:
            _fail(path, f"no {key}; an .npz dataset holds x_train, x_test and optionally x_valid, y_train, "
                        f"y_valid, y_test (found: {', '.join(sorted(arrays)) or 'nothing'})")
    x: dict[str, torch.Tensor | None] = {}
    y: dict[str, torch.Tensor | None] = {}
    shape = None
    for split in SPLITS:
        if f"x_{split}" not in arrays:
            if f"y_{split}" in arrays:
                _fail(path, f"y_{split} without x_{split}")
            x[split] = y[split] = None
            continue
        x[split], this = _images(path, f"x_{split}", arrays[f"x_{split}"])
        if shape is not None and this != shape:
            _fail(path, f"x_{split} images are {this} (C, H, W) but x_train's are {shape}; every split must "
                        f"have one image shape")
        shape = shape or this
        y[split] = _labels(path, f"y_{split}", arrays[f"y_{split}"], len(x[split])) if f"y_{split}" in arrays \
            else None
    labelled = [s for s in SPLITS if x[s] is not None and y[s] is not None]
    given = [s for s in SPLITS if x[s] is not None]
    if labelled and labelled != given:
        missing = ", ".join(f"y_{s}" for s in given if s not in labelled)
        _fail(path, f"labels are given for some splits but not for {missing}; give them for every split or none")
    classes = [str(c) for c in range(int(y["train"].max()) + 1)] if labelled else []
    return Grey(x, y, shape, classes)


def _decode(path: Path, data: bytes) -> np.ndarray:
    """(H, W, 3) uint8 RGB of one image file (grey images repeat their one channel)."""
    try:
        with Image.open(io.BytesIO(data)) as img:
            img.load()
            if img.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
                raise DataError(f"dataset image {path}: {img.mode} pixels (16-bit or float); save the images "
                                f"with 8 bits per channel")
            return np.asarray(img.convert("RGB"), dtype=np.uint8)
    except (UnidentifiedImageError, OSError, ValueError) as err:
        raise DataError(f"dataset image {path}: cannot be read as an image ({type(err).__name__}: {err}); "
                        f"remove or replace it") from None


def _folder_files(root: Path) -> dict[str, list[tuple[Path, str | None]]]:
    """split -> [(image path, class name or None)], sorted; DataError for a bad layout."""
    out: dict[str, list[tuple[Path, str | None]]] = {}
    for split in SPLITS:
        folder = root / split
        if not folder.is_dir():
            if split == "valid":
                continue
            _fail(root, f"no {split}/ subfolder; an image-folder dataset holds train/ and test/ (and optionally "
                        f"valid/), each with image files or one subfolder of image files per class")
        entries = sorted(p for p in folder.iterdir() if not p.name.startswith("."))
        dirs = [p for p in entries if p.is_dir()]
        images = [p for p in entries if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES]
        if dirs and images:
            _fail(root, f"{split}/ mixes image files and subfolders; put every image in a class subfolder, "
                        f"or none")
        if dirs:
            files = [(p, d.name) for d in dirs for p in sorted(d.iterdir())
                     if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_SUFFIXES]
        else:
            files = [(p, None) for p in images]
        if not files:
            _fail(root, f"{split}/ holds no images ({', '.join(IMAGE_SUFFIXES)})")
        out[split] = files
    labelled = {split: files[0][1] is not None for split, files in out.items()}
    if len(set(labelled.values())) > 1:
        _fail(root, "some splits have class subfolders and some do not; use them in every split or in none")
    return out


def _read_folder(root: Path, files: dict[str, list[tuple[Path, str | None]]]) -> tuple[Grey, str]:
    """The decoded images and the sha256 of the folder's manifest (path and sha256 of each)."""
    manifest = hashlib.sha256()
    decoded: dict[str, list] = {}
    for split, items in files.items():
        decoded[split] = []
        for path, _ in items:
            data = path.read_bytes()
            manifest.update(f"{path.relative_to(root).as_posix()}\t{hashlib.sha256(data).hexdigest()}\n".encode())
            decoded[split].append(_decode(path, data))
    first = decoded["train"][0]
    for split, imgs in decoded.items():
        for img, (path, _) in zip(imgs, files[split]):
            if img.shape != first.shape:
                _fail(root, f"{path.relative_to(root)} is {img.shape[1]}x{img.shape[0]} pixels but "
                            f"{files['train'][0][0].relative_to(root)} is {first.shape[1]}x{first.shape[0]}; "
                            f"every image must have one size")
    # Grey unless some image has colour: grey images saved as RGB stay grey.
    rgb = any(bool((img[..., 0] != img[..., 1]).any() or (img[..., 0] != img[..., 2]).any())
              for imgs in decoded.values() for img in imgs)
    classes = sorted({c for _, c in files["train"]}) if files["train"][0][1] is not None else []
    x: dict[str, torch.Tensor | None] = {s: None for s in SPLITS}
    y: dict[str, torch.Tensor | None] = {s: None for s in SPLITS}
    for split, imgs in decoded.items():
        arr = np.stack(imgs).transpose(0, 3, 1, 2)  # (N, 3, H, W)
        if not rgb:
            arr = arr[:, :1]
        x[split] = torch.from_numpy(np.ascontiguousarray(arr).reshape(len(arr), -1).astype(np.float32)
                                    / np.float32(255.0))
        if classes:
            extra = sorted({c for _, c in files[split]} - set(classes))
            if extra:
                _fail(root, f"{split}/ has class folder(s) {', '.join(extra)} that train/ has not; a label must be "
                            f"one of the training classes ({', '.join(classes)})")
            y[split] = torch.tensor([classes.index(c) for _, c in files[split]], dtype=torch.int64)
    h, w = first.shape[:2]
    return Grey(x, y, (3 if rgb else 1, h, w), classes), manifest.hexdigest()


# --- the format table ---------------------------------------------------------------------


@dataclass(frozen=True)
class Format:
    """How one kind of path is recognised, fingerprinted and read."""

    matches: Callable[[Path], bool]
    fingerprint: Callable[[Path], str]  # sha256 of the file, or of a folder's manifest
    read: Callable[[Path], tuple[Grey, str]]  # -> (grey data, the same sha256, from the bytes read)


def _npz_fingerprint(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _npz_read(path: Path) -> tuple[Grey, str]:
    data = path.read_bytes()
    return read_npz(path, data), hashlib.sha256(data).hexdigest()


def _folder_fingerprint(root: Path) -> str:
    manifest = hashlib.sha256()
    for items in _folder_files(root).values():
        for path, _ in items:
            sha = hashlib.sha256(path.read_bytes()).hexdigest()
            manifest.update(f"{path.relative_to(root).as_posix()}\t{sha}\n".encode())
    return manifest.hexdigest()


FORMATS: Registry = Registry("data format", {
    "npz": Format(lambda p: p.is_file() and p.suffix.lower() == ".npz", _npz_fingerprint, _npz_read),
    "folder": Format(lambda p: p.is_dir(), _folder_fingerprint,
                     lambda p: _read_folder(p, _folder_files(p))),
})


def looks_like_path(name: str) -> bool:
    """Whether a ``data.dataset`` value that names no dataset is meant as a path."""
    return os.sep in name or "/" in name or Path(name).suffix != "" or Path(name).exists()


def find_format(path: str | os.PathLike) -> str:
    """The format name of ``path``; DataError when it does not exist or is of no known format."""
    p = Path(path).expanduser()
    if not p.exists():
        raise DataError(f"dataset {path}: no such file or folder; a dataset is a name (see `vaelab parts`) or the "
                        f"path of an .npz file or an image folder")
    for name, fmt in FORMATS.items():
        if fmt.matches(p):
            return name
    raise DataError(f"dataset {path}: not an .npz file or a folder; see `vaelab.data.formats` for the layouts")


def fingerprint(path: str | os.PathLike) -> str:
    p = Path(path).expanduser()
    return FORMATS.get(find_format(p)).fingerprint(p)


@functools.lru_cache(maxsize=2)
def _read_cached(resolved: str, stamp: tuple[int, int]) -> tuple[Grey, str, str]:
    """The data at ``resolved``, read once per process while its size and mtime stay."""
    path = Path(resolved)
    fmt = find_format(path)
    grey, sha = FORMATS.get(fmt).read(path)
    return grey, sha, fmt


def _stamp(path: Path) -> tuple[int, int]:
    if path.is_dir():  # a folder's contents may change without its own mtime: stamp the newest entry
        stats = [p.stat() for p in path.rglob("*")] + [path.stat()]
        return sum(s.st_size for s in stats), max(s.st_mtime_ns for s in stats)
    st = path.stat()
    return st.st_size, st.st_mtime_ns


def _holdout(path: Path, x: torch.Tensor, y: torch.Tensor | None) -> tuple[Split, Split]:
    n = len(x)
    if n < 2:
        _fail(path, f"the training split holds {n} image(s): too few to hold some out for validation; "
                    f"add a validation split (x_valid, or a valid/ folder)")
    n_valid = max(1, int(round(n * HOLDOUT_FRACTION)))
    order = torch.randperm(n, generator=torch.Generator().manual_seed(HOLDOUT_SEED))
    valid_idx, train_idx = order[:n_valid].sort().values, order[n_valid:].sort().values
    labels = y if y is not None else torch.full((n,), -1, dtype=torch.int64)
    return Split(x[train_idx], labels[train_idx]), Split(x[valid_idx], labels[valid_idx])


def load_path(cfg, *, binary: bool | None = None) -> Dataset:
    """The dataset at ``cfg.dataset`` (a path).  ``binary``: whether the model's likelihood
    needs {0, 1} pixels (True: grey data is binarised by ``cfg.binarize``), or None for
    ``model.likelihood: auto`` (the data as it is; Bernoulli if it is binary)."""
    path = Path(cfg.dataset).expanduser()
    find_format(path)  # one line if it is missing or of no known format
    try:
        grey, sha, fmt = _read_cached(str(path.resolve()), _stamp(path))
    except OSError as err:
        raise DataError(f"dataset {path}: cannot be read ({err.strerror or err})") from None
    note = None
    classes = len(grey.classes)
    for split in SPLITS:
        if grey.y[split] is not None and classes and len(grey.y[split]) and int(grey.y[split].max()) >= classes:
            _fail(path, f"y_{split} holds label {int(grey.y[split].max())} but the training labels are "
                        f"0..{classes - 1}; every label must be one of the training classes")

    def split_of(name: str) -> Split:
        labels = grey.y[name] if grey.y[name] is not None else torch.full((len(grey.x[name]),), -1, dtype=torch.int64)
        return Split(grey.x[name], labels)

    if grey.x["valid"] is None:
        train, valid = _holdout(path, grey.x["train"], grey.y["train"])
        note = (f"{path.name} has no validation split: {len(valid.x)} of its {len(grey.x['train'])} training images "
                f"({HOLDOUT_FRACTION:.0%}, a permutation under seed {HOLDOUT_SEED}) are held out as one")
    else:
        train, valid = split_of("train"), split_of("valid")
    splits = {"train": train, "valid": valid, "test": split_of("test")}
    is_binary = all(bool(((s.x == 0) | (s.x == 1)).all()) for s in splits.values())
    wants_binary = is_binary if binary is None else binary
    dynamic = False
    limits = {"train": cfg.train_limit, "valid": cfg.test_limit, "test": cfg.test_limit}
    out = {}
    for name, split in splits.items():
        n = limits[name]
        x = split.x[:n]
        if wants_binary and not is_binary:
            rule = BINARIZATIONS.get(cfg.binarize)
            x = rule(x, name, lambda full=split.x, name=name: fixed_sample(full, name))
            dynamic = cfg.binarize == DYNAMIC
        out[name] = Split(x.clone(), split.y[:n].clone())
    source: dict[str, Any] = {"dataset": cfg.dataset, "path": str(path.resolve()), "format": fmt, "sha256": sha,
                              "image_shape": list(grey.image_shape), "classes": grey.classes}
    if note:
        source["note"] = note
    return Dataset(str(cfg.dataset), out["train"], out["valid"], out["test"], grey.image_shape,
                   binary=wants_binary, num_classes=classes, dynamic=dynamic, source=source)
