"""The nets' matrix products, through the faster of two float32 GEMM libraries.

PyTorch's CPU wheel runs ``torch.mm`` and ``nn.Linear`` on Intel's MKL.  On AMD CPUs MKL
takes its AVX2 code path even where the CPU has AVX-512: on a 2-core AMD EPYC (family 26,
AVX-512) a one-thread 2048^3 float32 product ran at 81-92 GFLOP/s through MKL and at
188-195 GFLOP/s through oneDNN, the other GEMM library inside the same wheel, and the
shapes of Table 1's nets 1.5-3x faster likewise (BENCHMARKS.md, "Two GEMM libraries").
Both compute in IEEE float32 (oneDNN here without its reduced-precision "fpmath" modes);
they add the products of a long row in different orders, so their results differ in the
last bits where a dot product is longer than about a hundred terms.

The library (``VAELAB_GEMM``):

* ``auto`` (default): oneDNN on AMD CPUs with AVX-512, where it was measured faster;
  torch's own product elsewhere (Intel CPUs, where MKL runs its AVX-512 kernels; ARM;
  CPUs without AVX-512, not measured);
* ``torch``: always torch's own (MKL on x86): the numbers of vaelab before this module;
* ``onednn``: oneDNN wherever this torch has it (a ConfigError where it does not).

Only float32 CPU tensors outside autocast and ``torch.compile`` take oneDNN; everything
else (a GPU, float64, ``train.precision``'s autocast, an inductor graph) is torch's own.
:class:`Linear` is ``nn.Linear`` with its product here (the same parameters and state
dict); :func:`mm` is the product the written-out backward (:meth:`MLP.backward_taped`)
uses, and calls oneDNN with the operands autograd's backward of :class:`Linear` gives it,
so the closed step still equals autograd bit for bit under either library.  Under oneDNN
an MLP's hidden layers with ``tanh`` or ``relu`` units run as one product each, the
activation applied as oneDNN writes the output (:func:`linear_act`; ``MLP._fused_pass``).
"""

from __future__ import annotations

import functools
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.autograd.function import once_differentiable

from ..errors import ConfigError, env_choice

MODES = ("auto", "torch", "onednn")
ENV = "VAELAB_GEMM"


def _onednn_op():
    """oneDNN's linear (y = x w^T + b over the last dim of x), or None in a build without it."""
    if not torch.backends.mkldnn.is_available():
        return None
    try:
        return torch.ops.mkldnn._linear_pointwise.default
    except (AttributeError, RuntimeError):
        return None


def _cpu_vendor() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("vendor_id"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return ""


@functools.cache
def _resolve(mode: str) -> str:
    if mode == "torch":
        return "torch"
    available = _onednn_op() is not None
    if mode == "onednn":
        if not available:
            raise ConfigError(f"{ENV}=onednn: this torch build has no oneDNN linear; use {ENV}=torch (or auto)")
        return "onednn"
    amd_avx512 = _cpu_vendor() == "AuthenticAMD" and torch.backends.cpu.get_cpu_capability() == "AVX512"
    return "onednn" if available and amd_avx512 else "torch"


def gemm_backend() -> str:
    """The library float32 CPU products use in this process: ``torch`` or ``onednn``
    (``VAELAB_GEMM`` resolved); a ConfigError for a bad value."""
    return _resolve(env_choice(ENV, MODES, "GEMM library"))


def takes_onednn(x: torch.Tensor, w: torch.Tensor) -> bool:
    """Whether the product of x and w runs on oneDNN here (and :func:`linear_act` may be used)."""
    return (x.dtype == torch.float32 and w.dtype == torch.float32 and x.device.type == "cpu" and x.dim() >= 2
            and not torch.is_autocast_enabled("cpu") and not torch.compiler.is_compiling()
            and gemm_backend() == "onednn")


def _dnn(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None, act: str = "none") -> torch.Tensor:
    return _onednn_op()(x, w, b, act, [], "")


# Activations oneDNN applies to a product's output as it writes it (no pass of their own),
# each with autograd's backward from that output: ``relu`` is exact (the same numbers as
# torch's), oneDNN's ``tanh`` is within 1.2 ulp of the exact tanh (torch's Sleef tanh 0.5):
# other bits than torch's.
FUSED_BACKWARD = {
    "relu": lambda d, h: torch.ops.aten.threshold_backward(d, h, 0),
    "tanh": lambda d, h: torch.ops.aten.tanh_backward(d, h),
}


class _OneDNNLinear(torch.autograd.Function):
    """act(x w^T + b) by oneDNN (``act`` ``none`` or one of :data:`FUSED_BACKWARD`), with
    autograd's backward: g through the activation from its output, then ``F.linear``'s
    (d x = g w, d w = g^T x over the flattened leading dims, d b = the sum of g over them),
    each product by oneDNN too (once differentiable: a second derivative is an error, not
    a silent zero)."""

    @staticmethod
    def forward(ctx, x, w, b, act="none"):
        y = _dnn(x, w, b, act)
        ctx.save_for_backward(x, w, *((y,) if act != "none" else ()))
        ctx.act = act
        return y

    @staticmethod
    @once_differentiable
    def backward(ctx, g):
        x, w, *y = ctx.saved_tensors
        if ctx.act != "none":
            g = FUSED_BACKWARD[ctx.act](g, y[0])  # through the activation first, from its output
        gx = gw = gb = None
        if ctx.needs_input_grad[0]:
            gx = _dnn(g, w.t(), None)
        g2 = g.reshape(-1, g.shape[-1])
        if ctx.needs_input_grad[1]:
            gw = _dnn(g2.t(), x.reshape(-1, x.shape[-1]).t(), None)
        if ctx.needs_input_grad[2]:  # False for no bias
            gb = torch.sum(g2, 0)
        return gx, gw, gb, None


def linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """``F.linear(x, weight, bias)`` through :func:`gemm_backend`'s library."""
    if not takes_onednn(x, weight):
        return F.linear(x, weight, bias)
    return _onednn_linear(x, weight, bias, "none")


def linear_act(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, act: str) -> torch.Tensor:
    """``act(F.linear(x, weight, bias))`` as one oneDNN product with the activation
    (``relu`` or ``tanh``, :data:`FUSED_BACKWARD`) applied as it writes the output; only
    where :func:`takes_onednn` says so."""
    return _onednn_linear(x, weight, bias, act)


def _onednn_linear(x, weight, bias, act: str) -> torch.Tensor:
    """Through autograd where a gradient is wanted, else the bare product."""
    if torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in (x, weight, bias)):
        return _OneDNNLinear.apply(x, weight, bias, act)
    return _dnn(x, weight, bias, act)


def mm(a: torch.Tensor, b: torch.Tensor, *, out: torch.Tensor | None = None) -> torch.Tensor:
    """``torch.mm(a, b[, out=out])`` through :func:`gemm_backend`'s library (no gradient:
    for written-out backward passes)."""
    if not takes_onednn(a, b):
        return torch.mm(a, b, out=out) if out is not None else torch.mm(a, b)
    r = _dnn(a, b.t(), None)
    return out.copy_(r) if out is not None else r


class Linear(nn.Linear):
    """``nn.Linear`` whose product is :func:`linear`'s: the same parameters, initialisation
    and state dict; ``isinstance(layer, nn.Linear)`` holds."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return linear(x, self.weight, self.bias)
