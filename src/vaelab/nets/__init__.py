"""Network bodies.  They map inputs to distribution *parameters*; they know no losses.

An architecture is registered in ``NETS`` under a name (``mlp``, ``conv``) and builds
an encoder and a decoder:

* ``encoder(cfg, image_shape, out_dim, cond_dim)``: x (B, D) [, c (B, C)] -> (B, out_dim)
* ``decoder(cfg, in_dim, image_shape, n_params, cond_dim)``: z (N, in_dim) [, c (N, C)]
  -> (N, n_params * D), grouped parameter-major ([all means, all stds] for Gaussians).

``cond_dim > 0`` means a conditioning vector (the CVAE's one-hot label) is fed in too.
"""

from . import conv, mlp  # noqa: F401  (register "conv", "mlp")
from .mlp import MLP, activation

__all__ = ["MLP", "activation"]
