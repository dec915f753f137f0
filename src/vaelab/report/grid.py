"""Image grids as PNG (no torchvision: it does not install beside this torch build)."""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
import torch

from ..io import atomic_write_bytes


def make_grid(images: torch.Tensor, image_shape: tuple[int, int, int], nrow: int | None = None,
              pad: int = 1) -> np.ndarray:
    """(N, D) in [0,1] -> one (H', W') grey array, ``nrow`` images per row."""
    c, h, w = image_shape
    imgs = images.detach().float().clamp(0, 1).reshape(-1, c, h, w)[:, 0].cpu().numpy()
    n = imgs.shape[0]
    nrow = nrow or int(math.ceil(math.sqrt(n)))
    rows = int(math.ceil(n / nrow))
    grid = np.ones((rows * (h + pad) + pad, nrow * (w + pad) + pad), dtype=np.float32)
    for i, img in enumerate(imgs):
        r, col = divmod(i, nrow)
        grid[pad + r * (h + pad): pad + r * (h + pad) + h, pad + col * (w + pad): pad + col * (w + pad) + w] = img
    return grid


def save_grid(images: torch.Tensor, image_shape: tuple[int, int, int], path: str | Path,
              nrow: int | None = None, scale: int = 3) -> Path:
    """Write a grid PNG atomically; each pixel drawn as a scale x scale block."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    grid = make_grid(images, image_shape, nrow)
    grid = np.kron(grid, np.ones((scale, scale), dtype=np.float32))
    buf = io.BytesIO()
    plt.imsave(buf, grid, cmap="gray", vmin=0.0, vmax=1.0, format="png")
    path = Path(path)
    atomic_write_bytes(path, buf.getvalue())
    return path
