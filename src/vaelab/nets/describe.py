"""Nets describing themselves: the exact forward pass as JSON-ready data, read off the
built modules (never from the config), for a run's ``config.json`` (``architecture``).

A description is an ordered list of steps applied to a flat batch (N, features); each
layer names its tensors by their ``state_dict`` name in the model, which is the name in
the checkpoint after the ``model.`` prefix.  Step ops::

    linear            y = x W^T + b                   weight (out, in), bias (out,) or null
    conv2d            torch.nn.functional.conv2d       kernel, stride, padding, dilation, groups
    conv_transpose2d  ...conv_transpose2d              + output_padding; weight (in, out, kh, kw)
    batch_norm2d      per channel; at evaluation with running_mean / running_var and eps
    tanh relu sigmoid leaky_relu(negative_slope) elu(alpha) softplus(beta, threshold) gelu(approximate)
    reshape           to ``shape`` (-1: the batch), C order
    concat_condition  append the condition vector (a one-hot label) to the last dim
    add               add the tensor ``param`` (broadcast over the batch)
"""

from __future__ import annotations

from typing import Any

import torch.nn as nn

Step = dict[str, Any]


def _pair(v: Any) -> list[int]:
    return list(v) if isinstance(v, (tuple, list)) else [int(v), int(v)]


def _params(name: str, layer: nn.Module, *tensors: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for t in tensors:
        out[t] = f"{name}.{t}" if getattr(layer, t, None) is not None else None
    return out


def describe_layer(layer: nn.Module, name: str) -> Step:
    """One module as a step; ``name`` is its state_dict prefix in the model."""
    if isinstance(layer, nn.Linear):
        return {"op": "linear", "in": layer.in_features, "out": layer.out_features,
                **_params(name, layer, "weight", "bias")}
    if isinstance(layer, (nn.Conv2d, nn.ConvTranspose2d)):
        step = {"op": "conv2d" if isinstance(layer, nn.Conv2d) else "conv_transpose2d",
                "in": layer.in_channels, "out": layer.out_channels, "kernel": _pair(layer.kernel_size),
                "stride": _pair(layer.stride), "padding": _pair(layer.padding), "dilation": _pair(layer.dilation),
                "groups": layer.groups, **_params(name, layer, "weight", "bias")}
        if isinstance(layer, nn.ConvTranspose2d):
            step["output_padding"] = _pair(layer.output_padding)
        return step
    if isinstance(layer, nn.BatchNorm2d):
        return {"op": "batch_norm2d", "features": layer.num_features, "eps": layer.eps, "momentum": layer.momentum,
                "at_evaluation": "running statistics", "in_training": "statistics of the batch",
                **_params(name, layer, "weight", "bias", "running_mean", "running_var")}
    if isinstance(layer, nn.LeakyReLU):
        return {"op": "leaky_relu", "negative_slope": layer.negative_slope}
    if isinstance(layer, nn.ELU):
        return {"op": "elu", "alpha": layer.alpha}
    if isinstance(layer, nn.Softplus):
        return {"op": "softplus", "beta": layer.beta, "threshold": layer.threshold}
    if isinstance(layer, nn.GELU):
        return {"op": "gelu", "approximate": layer.approximate}
    simple = {nn.Tanh: "tanh", nn.ReLU: "relu", nn.Sigmoid: "sigmoid"}
    if type(layer) in simple:
        return {"op": simple[type(layer)]}
    raise TypeError(f"no description for {type(layer).__name__} at {name!r}: describe it in vaelab.nets.describe")


def describe_sequential(seq: nn.Sequential, name: str) -> list[Step]:
    return [describe_layer(layer, f"{name}.{i}") for i, layer in enumerate(seq)]
