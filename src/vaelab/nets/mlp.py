"""Fully connected bodies: K&W (2014) appendix C, one or more hidden layers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn as nn

from ..registry import Registry
from . import gemm
from .describe import describe_sequential


@dataclass(frozen=True)
class Activation:
    """An activation (``model.activation``) and the weight start that suits it: Glorot &
    Bengio's for saturating ones, He et al.'s for the ReLU family (``model.init: auto``)."""

    module: type[nn.Module]
    init: str
    # Its backward, (d loss / dh, input a, output h = f(a)) -> d loss / da: the kernel autograd
    # runs for the module, so that a hand-written backward (:meth:`MLP.backward_taped`)
    # computes autograd's numbers; None for an activation without one (a plugin's bare
    # module), whose nets then train by autograd.
    backward: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor] | None = None
    # Its name among the activations oneDNN applies as it writes a product's output
    # (:data:`vaelab.nets.gemm.FUSED_BACKWARD`), where the nets' products run on oneDNN.
    fused: str | None = None

    def __call__(self) -> nn.Module:
        return self.module()


# Autograd's backward for each activation module, as torch's derivatives.yaml writes it
# (module-level functions: a model holding one still pickles).
def _b_tanh(d, a, h):
    return torch.ops.aten.tanh_backward(d, h)


def _b_sigmoid(d, a, h):
    return torch.ops.aten.sigmoid_backward(d, h)


def _b_relu(d, a, h):
    return torch.ops.aten.threshold_backward(d, h, 0)


def _b_softplus(d, a, h):  # nn.Softplus: beta 1, threshold 20
    return torch.ops.aten.softplus_backward(d, a, 1, 20)


def _b_leaky_relu(d, a, h):  # nn.LeakyReLU: slope 0.01
    return torch.ops.aten.leaky_relu_backward(d, a, 0.01, False)


def _b_elu(d, a, h):  # nn.ELU: alpha 1
    return torch.ops.aten.elu_backward(d, 1.0, 1, 1, False, a)


def _b_gelu(d, a, h):  # nn.GELU: the exact (erf) form
    return torch.ops.aten.gelu_backward(d, a, approximate="none")


ACTIVATIONS: Registry = Registry("activation", {
    "tanh": Activation(nn.Tanh, "glorot", _b_tanh, "tanh"), "softplus": Activation(nn.Softplus, "glorot", _b_softplus),
    "sigmoid": Activation(nn.Sigmoid, "glorot", _b_sigmoid), "relu": Activation(nn.ReLU, "he", _b_relu, "relu"),
    "leaky_relu": Activation(nn.LeakyReLU, "he", _b_leaky_relu), "elu": Activation(nn.ELU, "he", _b_elu),
    "gelu": Activation(nn.GELU, "he", _b_gelu),
}, plugins="activation")


def activation(name: str) -> nn.Module:
    """A fresh activation module; a plugin's may be a bare ``nn.Module`` class."""
    return ACTIVATIONS.get(name)()


class MLP(nn.Module):
    """in -> hidden... -> out with an activation after every hidden layer.

    A conditioning vector, when given, is concatenated to the input (Sohn et al. 2015).
    """

    def __init__(self, in_dim: int, hidden: tuple[int, ...], out_dim: int, act: str, cond_dim: int = 0):
        super().__init__()
        layers: list[nn.Module] = []
        width = in_dim + cond_dim
        for h in hidden:
            layers += [gemm.Linear(width, h), activation(act)]
            width = h
        layers.append(gemm.Linear(width, out_dim))
        self.net = nn.Sequential(*layers)
        self.in_dim, self.out_dim, self.cond_dim = in_dim, out_dim, cond_dim
        # a plugin's activation may be a bare nn.Module class, without a backward (then: autograd)
        self._act_backward = getattr(ACTIVATIONS.get(act), "backward", None) if hidden else None
        self._act_fused = getattr(ACTIVATIONS.get(act), "fused", None) if hidden else None

    @property
    def output_bias(self) -> torch.Tensor:
        """The last layer's bias, one entry per output (the decoder's per-pixel start)."""
        return self.net[-1].bias

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        if cond is not None:
            # (..., D) ++ (B, C) broadcast over leading sample dims -> (..., D + C)
            x = torch.cat([x, cond.expand(*x.shape[:-1], cond.shape[-1])], dim=-1)
        if self._fusing(x):
            return self._fused_pass(x)
        return self.net(x)

    # --- products with their activation fused (oneDNN: vaelab.nets.gemm) -------------------
    def _hooked(self) -> bool:
        return any(m._forward_hooks or m._forward_pre_hooks or m._backward_hooks or m._backward_pre_hooks
                   for m in self.modules())

    def _fusing(self, x: torch.Tensor) -> bool:
        """Whether each hidden layer runs as one product with its activation applied as it is
        written (:func:`gemm.linear_act`): an activation oneDNN has, operands it takes, and no
        hook on a layer (a fused pass calls no module)."""
        return self._act_fused is not None and gemm.takes_onednn(x, self.net[0].weight) and not self._hooked()

    def _fused_pass(self, x: torch.Tensor, tape: list | None = None) -> torch.Tensor:
        """The forward pass, hidden layers fused.  With ``tape``, appends what
        :meth:`backward_taped` reads at every module's position: a fused activation's backward
        needs only its output, which stands at both the product's and the activation's."""
        layers = list(self.net)
        for lin in layers[0:-1:2]:
            x = gemm.linear_act(x, lin.weight, lin.bias, self._act_fused)
            if tape is not None:
                tape += [x, x]
        x = layers[-1](x)
        if tape is not None:
            tape.append(x)
        return x

    # --- the forward pass with its backward written out (objectives/closed.py) -------------
    @property
    def taped(self) -> bool:
        """Whether :meth:`backward_taped` can stand in for autograd: the hidden activation
        has its backward kernel and no hook watches a layer (the taped pass would skip it)."""
        return (self._act_backward is not None or len(self.net) == 1) and not self._hooked()

    def forward_taped(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> tuple[torch.Tensor, list]:
        """:meth:`forward` (the same ops, the same numbers) on a flat batch (N, in), keeping
        every layer's input and output.  -> (output, tape) for :meth:`backward_taped`."""
        if cond is not None:
            x = torch.cat([x, cond.expand(*x.shape[:-1], cond.shape[-1])], dim=-1)
        tape = [x]
        if self._fusing(x):
            return self._fused_pass(x, tape), tape
        for layer in self.net:  # each module's own forward (``taped`` has checked that no hook is skipped)
            tape.append(layer.forward(tape[-1]))
        return tape[-1], tape

    def backward_taped(self, tape: list, grad_out: torch.Tensor, input_grad: bool = False) -> torch.Tensor | None:
        """Backpropagate ``grad_out`` = d loss / d output (N, out) through the taped pass
        with the kernels autograd calls for ``forward``, in its order (its numbers, bit for
        bit): each weight's and bias's gradient goes into its ``.grad`` (replacing what is
        there, as after ``zero_grad``); -> d loss / d input (N, in + cond) when ``input_grad``.
        A weight's gradient is d^T input, as autograd's ``mm_mat2_backward`` computes it for a
        weight used transposed."""
        d = grad_out
        layers = list(self.net)
        for i in range(len(layers) - 1, -1, -1):
            layer = layers[i]
            if isinstance(layer, nn.Linear):
                _into_grad(layer.weight, gemm.mm, d.t(), tape[i])
                if layer.bias is not None:
                    _into_grad(layer.bias, torch.sum, d, 0)
                if i == 0 and not input_grad:
                    return None
                d = gemm.mm(d, layer.weight)
            else:  # an activation, from its input and output
                d = self._act_backward(d, tape[i], tape[i + 1])
        return d

    def describe(self, name: str) -> dict:
        """The forward pass as data (:mod:`.describe`); ``name``: this net's state_dict prefix."""
        cond = [{"op": "concat_condition", "size": self.cond_dim}] if self.cond_dim else []
        return {"type": "mlp", "in": self.in_dim, "condition": self.cond_dim, "out": self.out_dim,
                "steps": cond + describe_sequential(self.net, f"{name}.net")}


def _into_grad(p: torch.Tensor, op: Callable[..., torch.Tensor], *args) -> None:
    """p.grad = op(*args), written with ``out=`` into the gradient tensor p already holds
    (no allocation per step) where there is a usable one, else assigned."""
    g = p.grad
    if g is not None and g.shape == p.shape and g.is_contiguous():
        op(*args, out=g)
    else:
        p.grad = op(*args)


class MLPArchitecture:
    config_keys = ("hidden", "activation")  # the model.* keys these nets are built from

    @staticmethod
    def default_init(cfg) -> str:
        """``model.init: auto``: the activation's own start (Glorot for tanh, as Burda et al.
        and Kingma & Welling; He for ReLU-like units)."""
        return getattr(ACTIVATIONS.get(cfg.activation), "init", "glorot")
    @staticmethod
    def encoder(cfg, image_shape, out_dim: int, cond_dim: int = 0) -> nn.Module:
        c, h, w = image_shape
        return MLP(c * h * w, tuple(cfg.hidden), out_dim, cfg.activation, cond_dim)

    @staticmethod
    def decoder(cfg, in_dim: int, image_shape, n_params: int, cond_dim: int = 0) -> nn.Module:
        c, h, w = image_shape
        # The decoder mirrors the encoder's hidden sizes (K&W use equal sizes).
        return MLP(in_dim, tuple(reversed(cfg.hidden)), n_params * c * h * w, cfg.activation, cond_dim)
