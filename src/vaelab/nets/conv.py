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
import torch.nn.functional as F

from ..errors import ConfigError
from . import gemm
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
        self.head = gemm.Linear(c2 * h2 * w2 + cond_dim, out_dim)
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
        self.fc = nn.Sequential(gemm.Linear(in_dim + cond_dim, c2 * sizes[-1][0] * sizes[-1][1]), nn.ReLU())
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

    def for_inference(self) -> "InferenceConvDecoder":
        """The same function in eval mode (batch norm at its running statistics), arranged
        for many rows without gradients: the IS evaluation's k samples per image."""
        return InferenceConvDecoder(self)

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


class InferenceConvDecoder(nn.Module):
    """A frozen :class:`ConvDecoder` in eval mode, equal to it up to float rounding and
    about 3x faster on the CPU for thousands of rows (BENCHMARKS.md, "CNN decoder"):

    * batch norm folded into the first transposed convolution (per output channel,
      w' = w * gamma / sqrt(var + eps), b' = (b - mean) * gamma / sqrt(var + eps) + beta);
    * the linear layer's rows permuted so that it writes channels-last feature maps
      directly (oneDNN's transposed convolution is fastest in that layout; no copy);
    * the last transposed convolution (few output channels, where oneDNN runs at a few
      GFLOP/s) as one GEMM giving each input position's 4x4 footprint, then an
      overlap-add of the 16 taps into the padded output and a crop;
    * rows in blocks of :data:`BLOCK`, so a block's feature maps stay in cache.
    """

    BLOCK = 512  # rows per block: 512 x 32 x 14 x 14 floats = 12.8 MB for MNIST's widest map

    @torch.no_grad()
    def __init__(self, dec: ConvDecoder):
        super().__init__()
        fc, ct1, bn, _, ct2 = dec.fc[0], *dec.deconv
        c2, h2, w2 = dec.start
        self.start, self.image_shape, self.n_params = dec.start, dec.image_shape, dec.n_params
        # fc output index (c, y, x) -> (y, x, c): the feature map comes out channels-last
        self.fc_w = fc.weight.view(c2, h2, w2, -1).permute(1, 2, 0, 3).reshape(c2 * h2 * w2, -1).clone()
        self.fc_b = fc.bias.view(c2, h2, w2).permute(1, 2, 0).reshape(-1).clone()
        scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)  # (C1,)
        self.w1 = (ct1.weight * scale[None, :, None, None]).contiguous(memory_format=torch.channels_last)
        self.b1 = ((ct1.bias - bn.running_mean) * scale + bn.bias).clone()
        self.pad1, self.out_pad1 = ct1.padding, ct1.output_padding
        cin, cout, kh, kw = ct2.weight.shape
        assert (kh, kw) == (2 * STRIDE, 2 * STRIDE) and ct2.stride == (STRIDE, STRIDE)  # the overlap-add below
        self.taps = (cout, kh, kw)
        self.w2 = ct2.weight.reshape(cin, cout * kh * kw).clone()  # (C1, P*C*16): each tap of each channel
        self.pad2, self.out_pad2 = ct2.padding, ct2.output_padding
        self.pixel_bias = dec.pixel_bias.detach().clone()

    @torch.no_grad()
    def forward(self, z: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        lead = z.shape[:-1]
        if cond is not None:
            z = torch.cat([z, cond.expand(*lead, cond.shape[-1])], dim=-1)
        z = z.reshape(-1, z.shape[-1])
        c, hh, ww = self.image_shape
        out = z.new_empty(z.shape[0], self.n_params * c * hh * ww)
        for i in range(0, z.shape[0], self.BLOCK):
            self._block(z[i:i + self.BLOCK], out[i:i + self.BLOCK])
        return out.reshape(*lead, out.shape[-1])

    def _block(self, z: torch.Tensor, out: torch.Tensor) -> None:
        n = z.shape[0]
        c2, h2, w2 = self.start
        h = gemm.linear(z, self.fc_w, self.fc_b).relu_().view(n, h2, w2, c2).permute(0, 3, 1, 2)  # (n, C2, h2, w2) NHWC
        a = F.conv_transpose2d(h, self.w1, self.b1, STRIDE, self.pad1, self.out_pad1).relu_()  # (n, C1, H, W) NHWC
        _, cin, H, W = a.shape
        cout, kh, kw = self.taps
        cols = gemm.mm(a.permute(0, 2, 3, 1).reshape(n * H * W, cin), self.w2)  # (n*H*W, cout*kh*kw)
        cols = cols.view(n, H * W, cout * kh * kw).transpose(1, 2).contiguous().view(n, cout, kh, kw, H, W)
        # Tap (ky, kx) of input (i, j) lands on row 2i + ky, column 2j + kx of the uncropped
        # output, (2H + 2) x (2W + 2) = (H + 1, 2) x (W + 1, 2) in (position, phase) form.
        full = z.new_zeros(n, cout, H + 1, STRIDE, W + 1, STRIDE)
        for ky in range(kh):
            for kx in range(kw):
                full[:, :, ky // 2:ky // 2 + H, ky % 2, kx // 2:kx // 2 + W, kx % 2] += cols[:, :, ky, kx]
        ho, wo = STRIDE * H + self.out_pad2[0], STRIDE * W + self.out_pad2[1]
        (py, px) = self.pad2
        crop = full.view(n, cout, STRIDE * (H + 1), STRIDE * (W + 1))[:, :, py:py + ho, px:px + wo]
        torch.add(crop, self.pixel_bias.view(cout, ho, wo), out=out.view(n, cout, ho, wo))


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
