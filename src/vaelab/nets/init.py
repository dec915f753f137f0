"""Weight initialisation, part of the model (``model.init``, recorded in every run's config).

Schemes, applied to every Linear, Conv2d and ConvTranspose2d of the encoder and decoder
nets (batch norm keeps its own start, weight 1 and bias 0):

* ``glorot``: Glorot & Bengio (2010) uniform weights, U(-a, a) with
  a = sqrt(6 / (fan_in + fan_out)), and zero biases.  What Burda et al. (2015) use for
  their tanh MLPs (their code's default initialiser), and the start that keeps the
  2-layer model's top units alive (issue #9: with PyTorch's default start its z2 had 0
  active units after 5 epochs).
* ``he``: He et al. (2015) uniform for ReLU nets, U(-a, a) with a = sqrt(6 / fan_in),
  zero biases.
* ``torch``: PyTorch's own default (Kaiming-uniform with a = sqrt(5), i.e. roughly
  U(+-1/sqrt(fan_in)), biases likewise): what vaelab used everywhere before issue #9;
  measured best for the batch-normalised conv net.

``model.init: auto`` picks per architecture (:func:`vaelab.config.auto_init`, resolved
when the config is built so the saved config names the scheme), from measurements on
MNIST given in the README's "How the models start".

The decoder's output bias is set separately, from the data (:func:`set_output_bias`):
the likelihood turns the mean training image into the bias that makes p(x | z) that
image for every z, so the first updates go into structure, not into learning the mean
image while the KL term pushes every posterior onto the prior.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn

_LAYERS = (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)


@torch.no_grad()
def init_weights(module: nn.Module, scheme: str) -> None:
    """Re-initialise every Linear/conv layer under ``module`` in place."""
    if scheme == "torch":
        return  # the layers were built with PyTorch's default
    for layer in module.modules():
        if not isinstance(layer, _LAYERS):
            continue
        w = layer.weight
        fan_in, fan_out = nn.init._calculate_fan_in_and_fan_out(w)
        if isinstance(layer, nn.ConvTranspose2d):
            fan_in, fan_out = fan_out, fan_in  # weight is (in, out, kh, kw)
        if scheme == "glorot":
            bound = math.sqrt(6.0 / (fan_in + fan_out))
        elif scheme == "he":
            bound = math.sqrt(6.0 / fan_in)
        else:
            raise ValueError(f"unknown init scheme {scheme!r}")
        w.uniform_(-bound, bound)
        if layer.bias is not None:
            layer.bias.zero_()


@torch.no_grad()
def set_output_bias(bias: torch.Tensor, values: torch.Tensor) -> None:
    """Copy ``values`` (the likelihood's parameters for the mean image) into a decoder's
    per-output bias (flat, parameter-major like the decoder's output)."""
    if bias.numel() != values.numel():
        raise ValueError(f"output bias has {bias.numel()} entries, the data give {values.numel()}")
    bias.copy_(values.reshape(bias.shape).to(bias.dtype))
