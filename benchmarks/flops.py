"""FLOP counts of the dense layers (GEMMs and convolutions) that a model actually runs.

Rules (multiply-add = 2 FLOPs; bias adds, activations and the loss are not counted):

* ``nn.Linear`` in -> out on N rows: forward 2*N*in*out.  Backward: the weight gradient
  is another 2*N*in*out; the input gradient is 2*N*in*out more, *only if the input needs
  a gradient*.  The first encoder layer sees the data, which needs none, so its
  input-gradient GEMM is not run and not counted.
* ``nn.Conv2d`` (N images, Cout x Hout x Wout outputs, Cin/groups x kh x kw per output):
  forward 2*N*Cout*Hout*Wout*(Cin/groups)*kh*kw; ``nn.ConvTranspose2d`` the same with the
  roles of input and output swapped (2*N*Cin*Hin*Win*(Cout/groups)*kh*kw).  Backward by
  the same rule as Linear.

:class:`count_flops` measures these by hooks on a real forward pass, so it counts what
the model does (an IWAE decoder on k*B rows, an encoder re-run per evaluation chunk)
instead of what one believes it does; :func:`mlp_vae_step_flops` is the closed form for
the MLP VAE, and the benchmark checks that the two agree.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from vaelab.nets import gemm


def _dense_fwd_flops(module: nn.Module, inp: torch.Tensor, out: torch.Tensor) -> int:
    if isinstance(module, nn.Linear):
        rows = inp.numel() // module.in_features
        return 2 * rows * module.in_features * module.out_features
    if isinstance(module, nn.ConvTranspose2d):  # check before Conv2d: not a subclass, but be explicit
        n, cin, hin, win = inp.shape
        kh, kw = module.kernel_size
        return 2 * n * cin * hin * win * (module.out_channels // module.groups) * kh * kw
    if isinstance(module, nn.Conv2d):
        n, cout, hout, wout = out.shape
        kh, kw = module.kernel_size
        return 2 * n * cout * hout * wout * (module.in_channels // module.groups) * kh * kw
    return 0


class count_flops:
    """``with count_flops(model) as c: <one step>`` -> ``c.forward``, ``c.backward``, ``c.total``.

    Backward FLOPs are booked at forward time from what autograd will need: the weight
    gradient when grad is enabled and the weight requires it, the input gradient when the
    input requires it.  Run ``backward()`` inside the block or not; the count is the same.
    """

    DENSE = (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)

    def __init__(self, model: nn.Module):
        self.model = model
        self.forward = 0
        self.backward = 0
        self.layers: list[tuple[str, int, int]] = []  # (name, fwd, bwd)
        self.linear_shapes: list[tuple[int, int, int, bool, bool]] = []  # (rows, in, out, dW, dX)
        self._handles = []

    def __enter__(self) -> "count_flops":
        for name, mod in self.model.named_modules():
            if isinstance(mod, self.DENSE):
                self._handles.append(mod.register_forward_hook(self._hook(name)))
        return self

    def _hook(self, name: str):
        def hook(module, inputs, output):
            inp = inputs[0]
            fwd = _dense_fwd_flops(module, inp, output)
            bwd = 0
            if torch.is_grad_enabled():
                if module.weight.requires_grad:
                    bwd += fwd  # dL/dW
                if inp.requires_grad:
                    bwd += fwd  # dL/dinput
            self.forward += fwd
            self.backward += bwd
            self.layers.append((name, fwd, bwd))
            if isinstance(module, nn.Linear):
                grad = torch.is_grad_enabled()
                self.linear_shapes.append((inp.numel() // module.in_features, module.in_features,
                                           module.out_features, grad and module.weight.requires_grad,
                                           grad and inp.requires_grad))
        return hook

    def __exit__(self, *exc) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()

    @property
    def total(self) -> int:
        return self.forward + self.backward


def gemm_only(shapes: list[tuple[int, int, int, bool, bool]], device="cpu"):
    """A function that runs just the GEMMs of one step (shapes from count_flops:
    forward addmm, weight-gradient mm, input-gradient mm) on random operands, for the
    floor that the dense algebra alone sets at these sizes."""
    g = torch.Generator().manual_seed(0)
    ops = []
    for rows, i, o, dw, dx in shapes:
        x, w = torch.randn(rows, i, generator=g).to(device), torch.randn(o, i, generator=g).to(device)
        b, gy = torch.randn(o, generator=g).to(device), torch.randn(rows, o, generator=g).to(device)
        ops.append((x, w, b, gy, dw, dx))

    def run() -> None:  # through the GEMM library vaelab's nets use here (vaelab.nets.gemm)
        for x, w, b, gy, dw, dx in ops:
            gemm.linear(x, w, b)  # forward
            if dw:
                gemm.mm(gy.t(), x)  # dL/dW
            if dx:
                gemm.mm(gy, w)  # dL/dx

    return run


def mlp_vae_step_flops(batch: int, d: int = 784, hidden: int = 500, latent: int = 20) -> dict[str, int]:
    """Closed form for one training step of the one-hidden-layer MLP VAE.

    Layers (in x out): encoder d x h, h x 2z; decoder z x h, h x d.  S = sum of in*out.
    forward = 2*B*S;  backward = 2*B*S (weight grads) + 2*B*(S - d*h) (input grads, none
    for the first layer, whose input is the data).
    """
    s = d * hidden + hidden * 2 * latent + latent * hidden + hidden * d
    fwd = 2 * batch * s
    bwd = 2 * batch * s + 2 * batch * (s - d * hidden)
    return {"forward": fwd, "backward": bwd, "total": fwd + bwd, "S": s}
