"""Convolutional bodies: the study's CNN VAE (its sec. 4.2.2 and appendix A.2).

Encoder: two stride-2 convolutions, each followed by batch norm and LeakyReLU, then a
linear layer to the posterior parameters.  Decoder: a linear layer (+ ReLU) from z to a
feature map, then two stride-2 transposed convolutions, batch norm and ReLU between them;
the last one (no bias of its own) plus a learned per-pixel bias emits unconstrained
per-pixel parameters (logits for Bernoulli pixels: the likelihood applies the sigmoid, in
log space).

Widths follow common MNIST CNN VAEs: 32 then 64 channels, kernel 4, stride 2, padding 1,
so 28 -> 14 -> 7 and back.  Any image from 4x8 or 8x4 pixels up works: odd sizes are
restored by the transposed convolutions' ``output_padding`` (Frey Faces 28x20 ->
14x10 -> 7x5 and back; a 27-pixel side goes 27 -> 13 -> 6 -> 13 -> 27).
``cfg.hidden`` and ``cfg.activation`` are MLP settings and are not used here: the
activations are the study's (LeakyReLU in, ReLU out).

In training mode batch norm normalises with the statistics of the batch it is given
(for a decoder: all k samples of all B images at once); ``model.eval()`` switches it to
running statistics, which the evaluation does.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn

from ..errors import ConfigError
from .describe import describe_layer, describe_sequential

CHANNELS = (32, 64)
KERNEL, STRIDE, PAD = 4, 2, 1


def _down(n: int) -> int:
    """Output side of one stride-2 conv (kernel 4, padding 1): floor(n / 2)."""
    return (n + 2 * PAD - KERNEL) // STRIDE + 1


def feature_sizes(image_shape) -> list[tuple[int, int]]:
    """Spatial sizes [input, after conv 1, after conv 2]; ConfigError when too small."""
    _, h, w = image_shape
    sizes = [(h, w)]
    for _ in CHANNELS:
        sizes.append((_down(sizes[-1][0]), _down(sizes[-1][1])))
    h2, w2 = sizes[-1]
    # Batch norm needs two values per channel even for a batch of one image.
    if h < 4 or w < 4 or h2 * w2 < 2:
        raise ConfigError(f"model.arch 'conv' needs images of at least 4x4 pixels whose 4x-downsampled map "
                          f"has 2 or more positions (e.g. 4x8, 8x8), got {h}x{w}; use arch mlp")
    return sizes


class ConvEncoder(nn.Module):
    """x (B, C*H*W) [, c (B, Cond)] -> (B, out_dim)."""

    def __init__(self, image_shape, out_dim: int, cond_dim: int = 0):
        super().__init__()
        c, _, _ = image_shape
        sizes = feature_sizes(image_shape)
        self.image_shape = tuple(image_shape)
        c1, c2 = CHANNELS
        self.features = nn.Sequential(
            nn.Conv2d(c, c1, KERNEL, STRIDE, PAD), nn.BatchNorm2d(c1), nn.LeakyReLU(0.2),
            nn.Conv2d(c1, c2, KERNEL, STRIDE, PAD), nn.BatchNorm2d(c2), nn.LeakyReLU(0.2),
        )
        h2, w2 = sizes[-1]
        self.features_shape = (c2, h2, w2)
        self.head = nn.Linear(c2 * h2 * w2 + cond_dim, out_dim)
        self.cond_dim = cond_dim

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        lead = x.shape[:-1]
        h = self.features(x.reshape(-1, *self.image_shape)).flatten(1)  # (N, 64*h2*w2)
        h = h.reshape(*lead, h.shape[-1])
        if cond is not None:
            # one-hot appended to the flattened conv features (Sohn et al. 2015)
            h = torch.cat([h, cond.expand(*lead, cond.shape[-1])], dim=-1)
        return self.head(h)

    def describe(self, name: str) -> dict:
        """The forward pass as data (:mod:`.describe`); ``name``: this net's state_dict prefix."""
        cond = [{"op": "concat_condition", "size": self.cond_dim}] if self.cond_dim else []
        c, h, w = self.image_shape
        return {"type": "conv_encoder", "in": c * h * w, "condition": self.cond_dim, "out": self.head.out_features,
                "steps": [{"op": "reshape", "shape": [-1, *self.image_shape]}]
                + describe_sequential(self.features, f"{name}.features")
                + [{"op": "reshape", "shape": [-1, math.prod(self.features_shape)]}]
                + cond + [describe_layer(self.head, f"{name}.head")]}


class ConvDecoder(nn.Module):
    """z (N, in_dim) [, c (N, Cond)] -> (N, n_params*C*H*W), grouped parameter-major
    like the MLP decoder: [all pixels of parameter 0, all pixels of parameter 1, ...]."""

    def __init__(self, in_dim: int, image_shape, n_params: int, cond_dim: int = 0):
        super().__init__()
        c, _, _ = image_shape
        sizes = feature_sizes(image_shape)
        c1, c2 = CHANNELS
        self.image_shape = tuple(image_shape)
        self.n_params = n_params
        self.start = (c2, *sizes[-1])
        # output_padding 1 restores an odd side lost by the encoder's floor(n / 2).
        pad2 = tuple(s % 2 for s in sizes[1])  # sizes[2] -> sizes[1]
        pad1 = tuple(s % 2 for s in sizes[0])  # sizes[1] -> sizes[0]
        self.fc = nn.Sequential(nn.Linear(in_dim + cond_dim, c2 * sizes[-1][0] * sizes[-1][1]), nn.ReLU())
        self.deconv = nn.Sequential(
            nn.ConvTranspose2d(c2, c1, KERNEL, STRIDE, PAD, output_padding=pad2), nn.BatchNorm2d(c1), nn.ReLU(),
            nn.ConvTranspose2d(c1, n_params * c, KERNEL, STRIDE, PAD, output_padding=pad1, bias=False),
        )
        # A per-pixel output bias (a convolution's bias is per channel): it is where the
        # data's mean image goes at the start (vaelab.nets.init), as in the MLP decoder.
        self.pixel_bias = nn.Parameter(torch.zeros(n_params * c * self.image_shape[1] * self.image_shape[2]))
        self.cond_dim = cond_dim

    @property
    def output_bias(self) -> torch.Tensor:
        return self.pixel_bias

    def forward(self, z: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        lead = z.shape[:-1]
        if cond is not None:
            z = torch.cat([z, cond.expand(*lead, cond.shape[-1])], dim=-1)
        h = self.fc(z).reshape(-1, *self.start)  # (N, 64, h2, w2)
        out = self.deconv(h)  # (N, P*C, H, W), channel index = p*C + c
        c, hh, ww = self.image_shape
        # (N, P, C, H, W) -> (N, P*C*H*W): parameter-major, each block in x's (C, H, W) order
        return out.reshape(*lead, self.n_params * c * hh * ww) + self.pixel_bias

    def describe(self, name: str) -> dict:
        """The forward pass as data (:mod:`.describe`); ``name``: this net's state_dict prefix."""
        cond = [{"op": "concat_condition", "size": self.cond_dim}] if self.cond_dim else []
        c, hh, ww = self.image_shape
        return {"type": "conv_decoder", "in": self.fc[0].in_features - self.cond_dim, "condition": self.cond_dim,
                "out": self.n_params * c * hh * ww,
                "steps": cond + describe_sequential(self.fc, f"{name}.fc")
                + [{"op": "reshape", "shape": [-1, *self.start]}]
                + describe_sequential(self.deconv, f"{name}.deconv")
                + [{"op": "reshape", "shape": [-1, self.n_params * c * hh * ww]},
                   {"op": "add", "param": f"{name}.pixel_bias"}]}


class ConvArchitecture:
    config_keys: tuple[str, ...] = ()  # model.hidden and model.activation are MLP settings

    @staticmethod
    def default_init(cfg) -> str:
        """``model.init: auto``: PyTorch's own start, whose smaller weights suit the batch-normalised
        conv net at the study's learning rate (docs/initialisation.md compares the schemes)."""
        return "torch"

    @staticmethod
    def encoder(cfg, image_shape, out_dim: int, cond_dim: int = 0) -> nn.Module:
        return ConvEncoder(image_shape, out_dim, cond_dim)

    @staticmethod
    def decoder(cfg, in_dim: int, image_shape, n_params: int, cond_dim: int = 0) -> nn.Module:
        return ConvDecoder(in_dim, image_shape, n_params, cond_dim)
