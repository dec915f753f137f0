"""Fully connected bodies: K&W (2014) appendix C, one or more hidden layers."""

from __future__ import annotations

import torch
import torch.nn as nn

from dataclasses import dataclass

from ..registry import Registry
from .describe import describe_sequential


@dataclass(frozen=True)
class Activation:
    """An activation (``model.activation``) and the weight start that suits it: Glorot &
    Bengio's for saturating ones, He et al.'s for the ReLU family (``model.init: auto``)."""

    module: type[nn.Module]
    init: str

    def __call__(self) -> nn.Module:
        return self.module()


ACTIVATIONS: Registry = Registry("activation", {
    "tanh": Activation(nn.Tanh, "glorot"), "softplus": Activation(nn.Softplus, "glorot"),
    "sigmoid": Activation(nn.Sigmoid, "glorot"), "relu": Activation(nn.ReLU, "he"),
    "leaky_relu": Activation(nn.LeakyReLU, "he"), "elu": Activation(nn.ELU, "he"), "gelu": Activation(nn.GELU, "he"),
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
            layers += [nn.Linear(width, h), activation(act)]
            width = h
        layers.append(nn.Linear(width, out_dim))
        self.net = nn.Sequential(*layers)
        self.in_dim, self.out_dim, self.cond_dim = in_dim, out_dim, cond_dim

    @property
    def output_bias(self) -> torch.Tensor:
        """The last layer's bias, one entry per output (the decoder's per-pixel start)."""
        return self.net[-1].bias

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        if cond is not None:
            # (..., D) ++ (B, C) broadcast over leading sample dims -> (..., D + C)
            x = torch.cat([x, cond.expand(*x.shape[:-1], cond.shape[-1])], dim=-1)
        return self.net(x)

    def describe(self, name: str) -> dict:
        """The forward pass as data (:mod:`.describe`); ``name``: this net's state_dict prefix."""
        cond = [{"op": "concat_condition", "size": self.cond_dim}] if self.cond_dim else []
        return {"type": "mlp", "in": self.in_dim, "condition": self.cond_dim, "out": self.out_dim,
                "steps": cond + describe_sequential(self.net, f"{name}.net")}


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
