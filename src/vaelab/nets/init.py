"""Weight initialisation, part of the model (``model.init``, recorded in every run's config).

Schemes (:data:`INITS`), applied to every Linear, Conv2d and ConvTranspose2d of the encoder
and decoder nets (batch norm keeps its own start, weight 1 and bias 0):

* ``glorot``: Glorot & Bengio (2010) uniform weights, U(-a, a) with
  a = sqrt(6 / (fan_in + fan_out)), and zero biases.  What Burda et al. (2015) use for
  their tanh MLPs (their code's default initialiser), and the start that keeps the
  2-layer model's top units alive (with PyTorch's default start its z2 had no active
  units after 5 epochs).
* ``he``: He et al. (2015) uniform for ReLU nets, U(-a, a) with a = sqrt(6 / fan_in),
  zero biases.
* ``torch``: PyTorch's own default (Kaiming-uniform with a = sqrt(5), i.e. roughly
  U(+-1/sqrt(fan_in)), biases likewise).

``model.init: auto`` is the architecture's own choice (its ``default_init``: the MLP takes
its activation's, the conv net PyTorch's), resolved when the config is checked so that the
saved config names the scheme (:func:`resolve_init`).

The decoder's output bias is set separately, from the data (:func:`set_output_bias`):
the likelihood turns the mean training image into the bias that makes p(x | z) that
image for every z, so the first updates go into structure, not into learning the mean
image while the KL term pushes every posterior onto the prior.
"""

from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn as nn

from ..registry import Registry

_LAYERS = (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)

# scheme -> the bound a of U(-a, a) from (fan_in, fan_out); None keeps the layer's own start
Bound = Callable[[int, int], float] | None
INITS: Registry = Registry("init scheme", {
    "glorot": lambda fan_in, fan_out: math.sqrt(6.0 / (fan_in + fan_out)),
    "he": lambda fan_in, fan_out: math.sqrt(6.0 / fan_in),
    "torch": None,
})


@torch.no_grad()
def init_weights(module: nn.Module, scheme: str) -> None:
    """Re-initialise every Linear/conv layer under ``module`` in place."""
    bound_of: Bound = INITS.get(scheme)
    if bound_of is None:
        return  # the layers were built with PyTorch's default
    for layer in module.modules():
        if not isinstance(layer, _LAYERS):
            continue
        w = layer.weight
        fan_in, fan_out = nn.init._calculate_fan_in_and_fan_out(w)
        if isinstance(layer, nn.ConvTranspose2d):
            fan_in, fan_out = fan_out, fan_in  # weight is (in, out, kh, kw)
        bound = bound_of(fan_in, fan_out)
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
