"""The in-memory dataset every other part of vaelab consumes, and how it is loaded.

A dataset is three splits of flattened images in [0, 1] plus what the model needs to know
about them: the image shape (conv nets), whether pixels are binary (Bernoulli decoder) or
grey (Gaussian decoder), and whether the training images are grey levels that the trainer
must binarise afresh each epoch (dynamic binarisation, Burda et al. 2015, sec. 5).

The built-in loaders (``mnist.py``, ``frey.py``) are listed by name in
:data:`vaelab.data.DATASETS`; datasets given by path are read by :mod:`.formats`;
:func:`vaelab.data.load_dataset` picks one or the other.  Every dataset says where it came
from (``source``), and a run records that with the sha256 of its test tensor
(:func:`tensor_sha256`), so that nothing evaluates a run on other images than its own.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from typing import Any

import torch



@dataclass(frozen=True)
class Split:
    x: torch.Tensor  # (N, D) float32, flattened images in [0, 1]
    y: torch.Tensor  # (N,) int64 labels; all -1 when the dataset has none

    def __post_init__(self) -> None:
        if self.x.dim() != 2 or self.y.dim() != 1 or len(self.x) != len(self.y):
            raise ValueError(f"Split needs x (N, D) and y (N,), got {tuple(self.x.shape)} "
                             f"and {tuple(self.y.shape)}")

    def head(self, n: int | None) -> "Split":
        """The first ``n`` examples (all when ``n`` is None), as tensors of their own.

        Cloning is what keeps callers from writing into the per-process cache.
        """
        return Split(self.x[:n].clone(), self.y[:n].clone())


@dataclass(frozen=True)
class DataInfo:
    """What a model must know about its data; saved with every run (``config.json``).

    ``pixel_mean`` is the mean training image (D grey levels or binary frequencies).  The
    decoders start from it: their output bias is set so that p(x | z) is the mean image
    before any training (Burda et al. 2015's code; see :mod:`vaelab.nets.init`).  ``None``
    (a model built without data) leaves that bias at zero.
    """

    image_shape: tuple[int, int, int]  # (C, H, W)
    binary: bool  # Bernoulli (True) or Gaussian (False) decoder under likelihood "auto"
    num_classes: int = 0
    pixel_mean: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        if self.pixel_mean is not None and len(self.pixel_mean) != self.dim:
            raise ValueError(f"DataInfo.pixel_mean has {len(self.pixel_mean)} values for {self.dim} pixels")

    @property
    def dim(self) -> int:
        c, h, w = self.image_shape
        return c * h * w

    def to_dict(self) -> dict:
        out = {"image_shape": list(self.image_shape), "binary": self.binary, "num_classes": self.num_classes}
        if self.pixel_mean is not None:
            out["pixel_mean"] = [round(v, 7) for v in self.pixel_mean]
        return out

    @classmethod
    def from_dict(cls, d: dict) -> "DataInfo":
        mean = d.get("pixel_mean")
        return cls(tuple(d["image_shape"]), bool(d["binary"]), int(d.get("num_classes", 0)),
                   None if mean is None else tuple(float(v) for v in mean))


@dataclass(frozen=True)
class Dataset:
    name: str  # "mnist" | "frey"
    train: Split
    valid: Split
    test: Split
    image_shape: tuple[int, int, int]  # (C, H, W)
    binary: bool  # True -> Bernoulli decoder, False -> Gaussian decoder
    num_classes: int  # 0 when there are no labels
    dynamic: bool  # train.x holds grey levels; binarize_dynamic() them every epoch
    # Where it came from, recorded with every run: {"dataset": name} and the files' sha256
    # for built-ins, {"dataset": path, "path": absolute path, "format", "sha256", "note"} for
    # a file or folder (formats.py); {} for a Dataset built in memory.
    source: dict[str, Any] = field(default_factory=dict)

    @property
    def dim(self) -> int:
        return math.prod(self.image_shape)

    @property
    def info(self) -> DataInfo:
        """The model's view of this dataset, including the mean training image.  For dynamic
        binarisation the grey levels' mean is the expected mean of the binary samples."""
        mean = self.train.x.double().mean(0).tolist() if len(self.train.x) else None
        return DataInfo(tuple(self.image_shape), bool(self.binary), int(self.num_classes), mean)


def tensor_sha256(x: torch.Tensor) -> str:
    """sha256 of a tensor's float32 values in C order (as ``x.cpu().float().numpy().tobytes()``)."""
    return hashlib.sha256(x.detach().to("cpu", torch.float32).contiguous().numpy().tobytes()).hexdigest()
