"""The in-memory dataset every other part of vaelab consumes, and how it is loaded.

A dataset is three splits of flattened images in [0, 1] plus what the model needs to know
about them: the image shape (conv nets), whether pixels are binary (Bernoulli decoder) or
grey (Gaussian decoder), and whether the training images are grey levels that the trainer
must binarise afresh each epoch (dynamic binarisation, Burda et al. 2015, sec. 5).

The loaders (``mnist.py``, ``frey.py``) are listed by name in :data:`vaelab.data.DATASETS`
and called as ``loader(cfg, data_dir, download=...)``; :func:`vaelab.data.load_dataset`
only looks the name up.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

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

    @property
    def dim(self) -> int:
        return math.prod(self.image_shape)

    @property
    def info(self) -> DataInfo:
        """The model's view of this dataset, including the mean training image.  For dynamic
        binarisation the grey levels' mean is the expected mean of the binary samples."""
        mean = self.train.x.double().mean(0).tolist() if len(self.train.x) else None
        return DataInfo(tuple(self.image_shape), bool(self.binary), int(self.num_classes), mean)


def binarize_dynamic(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """A fresh Bernoulli sample of grey levels ``x``: each pixel is 1 with probability x.

    Drawn anew every epoch this is the dynamic binarisation of Burda et al. (2015, sec. 5),
    which regularises far better than one fixed binary copy of the training set.
    """
    return torch.bernoulli(x.float(), generator=generator)
