"""Image grids as PNG, JPEG, ... (no torchvision: it does not install beside this torch build)."""

from __future__ import annotations

import io
import math
from pathlib import Path

import matplotlib.image
import numpy as np
import torch

from ..errors import ConfigError
from ..io import atomic_write_bytes


def make_grid(images: torch.Tensor, image_shape: tuple[int, int, int], nrow: int | None = None,
              pad: int = 1) -> np.ndarray:
    """(N, D) in [0,1] -> one array, ``nrow`` images per row: (H', W') grey, or (H', W', 3)
    for RGB images (any other channel count shows its first channel)."""
    c, h, w = image_shape
    imgs = images.detach().float().clamp(0, 1).reshape(-1, c, h, w).cpu().numpy()
    imgs = imgs.transpose(0, 2, 3, 1) if c == 3 else imgs[:, 0]  # (N, H, W[, 3])
    n = imgs.shape[0]
    nrow = nrow or grid_shape(n)[1]
    rows = int(math.ceil(n / nrow))
    grid = np.ones((rows * (h + pad) + pad, nrow * (w + pad) + pad, *imgs.shape[3:]), dtype=np.float32)
    for i, img in enumerate(imgs):
        r, col = divmod(i, nrow)
        grid[pad + r * (h + pad): pad + r * (h + pad) + h, pad + col * (w + pad): pad + col * (w + pad) + w] = img
    return grid


# What matplotlib (and Pillow behind it) writes; the file name's extension picks one.
IMAGE_FORMATS = ("png", "jpg", "jpeg", "tif", "tiff", "webp", "gif", "bmp", "pdf", "svg")


def image_format(path: str | Path) -> str:
    """The format a file name asks for (``s.jpg`` -> ``jpg``); ConfigError when vaelab
    cannot write it, so a name never gets bytes of another format."""
    suffix = Path(path).suffix.lower().lstrip(".")
    if suffix not in IMAGE_FORMATS:
        raise ConfigError(f"cannot write an image named {str(path)!r}: end the name with one of "
                          f".{', .'.join(IMAGE_FORMATS)}")
    return suffix


def grid_shape(n: int) -> tuple[int, int]:
    """(rows, per row) for n images with no ragged last row when n allows it: the most
    nearly square factorisation, wider than tall (30 -> 5 x 6, 64 -> 8 x 8); a prime n
    falls back to a near-square grid."""
    n = max(1, n)
    best = min(c for c in range(1, n + 1) if n % c == 0 and c * c >= n)
    if best > 2 * math.ceil(math.sqrt(n)):  # a prime or nearly so: one long row would be unreadable
        best = int(math.ceil(math.sqrt(n)))
    return int(math.ceil(n / best)), best


def save_grid(images: torch.Tensor, image_shape: tuple[int, int, int], path: str | Path,
              nrow: int | None = None, scale: int = 3) -> Path:
    """Write a grid image atomically, in the format of the name's extension; each pixel
    drawn as a scale x scale block."""
    fmt = image_format(path)
    grid = make_grid(images, image_shape, nrow)
    grid = grid.repeat(scale, axis=0).repeat(scale, axis=1)
    buf = io.BytesIO()
    matplotlib.image.imsave(buf, grid, cmap="gray", vmin=0.0, vmax=1.0, format=fmt)
    path = Path(path)
    atomic_write_bytes(path, buf.getvalue())
    return path
