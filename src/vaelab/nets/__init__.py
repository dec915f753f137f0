"""Network bodies.  They map inputs to distribution *parameters*; they know no losses.

An architecture is listed in :data:`NETS` under the name a config gives it (``mlp``, ``conv``) and builds
an encoder and a decoder:

* ``encoder(cfg, image_shape, out_dim, cond_dim)``: x (B, D) [, c (B, C)] -> (B, out_dim)
* ``decoder(cfg, in_dim, image_shape, n_params, cond_dim)``: z (N, in_dim) [, c (N, C)]
  -> (N, n_params * D), grouped parameter-major ([all means, all stds] for Gaussians).
* ``default_init(cfg)`` (optional): the weight start ``model.init: auto`` means for it
  (PyTorch's own where it is missing).

Every decoder exposes ``output_bias``: one learned bias per output, flat in the same
order, where the model puts the data's mean image at the start (:mod:`.init`).

``cond_dim > 0`` means a conditioning vector (the CVAE's one-hot label) is fed in too.
"""

from ..registry import Registry
from .conv import ConvArchitecture
from .init import INITS, init_weights, set_output_bias
from .mlp import ACTIVATIONS, MLP, MLPArchitecture, activation

NETS: Registry = Registry("architecture", {"mlp": MLPArchitecture, "conv": ConvArchitecture}, plugins="net")

__all__ = ["ACTIVATIONS", "INITS", "MLP", "NETS", "activation", "init_weights", "resolve_init", "set_output_bias"]


def resolve_init(cfg) -> str:
    """``model.init``, with ``auto`` replaced by the architecture's own choice."""
    if cfg.init != "auto":
        return cfg.init
    default = getattr(NETS.get(cfg.arch), "default_init", None)
    return default(cfg) if default is not None else "torch"
