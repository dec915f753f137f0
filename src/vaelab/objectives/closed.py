"""The ELBO's backward written out by hand, for a one-layer VAE whose every part writes
out its own: the nets' (:meth:`~vaelab.nets.mlp.MLP.backward_taped`), the likelihood's,
the reparameterisation's and the closed-form KL's.  The training loop uses it in place of
autograd wherever it is available (``VAELAB_STEP=closed``, the default; ``autograd``
turns it off).

Why: a step of the study's MLP VAE on the CPU is a few GEMMs of 100 rows and some fifty
small ops; autograd adds a graph node, its bookkeeping and its buffers to each op, and
recomputes terms the loss does not use (log p(z) and log q(z|x) at the sample, when the
KL is in closed form).  Written out, the same backward runs without them (BENCHMARKS.md
section 2).

Same numbers, bit for bit: the forward runs the ops of :meth:`VAE.log_weights`, and each
part's backward calls the kernels autograd calls for its forward (torch's
derivatives.yaml), on the same operands, summing a tensor's gradients in the order
autograd's engine does.  tests/objectives/test_closed.py checks the gradients equal
autograd's to the bit; a fixed-seed run trains to the same weights either way.
"""

from __future__ import annotations

from typing import Callable

import torch

from ..distributions import DiagonalGaussian
from ..errors import env_choice
from ..models.base import VAE

Step = Callable[..., dict[str, torch.Tensor]]
MODES = ("closed", "autograd")
ENV = "VAELAB_STEP"


def step_mode() -> str:
    """``VAELAB_STEP``: ``closed`` (default: the written-out gradient wherever a model has
    one) or ``autograd`` (always autograd); a ConfigError for another value."""
    return env_choice(ENV, MODES, "training step")


def _replicates_vae(model) -> bool:
    """The closed step re-enacts :meth:`VAE.log_weights` for the standard one-layer model:
    a subclass that changes how it encodes, samples or decodes trains by autograd."""
    return isinstance(model, VAE) and all(getattr(type(model), name) is getattr(VAE, name)
                                          for name in ("log_weights", "forward", "posterior", "decode"))


def _parts_write_out(model) -> bool:
    nets = (model.encoder, model.decoder)
    if not all(getattr(net, "taped", False) for net in nets):
        return False
    covered = {id(p) for net in nets for p in net.parameters()}
    if any(id(p) not in covered or not p.requires_grad for p in model.parameters()):
        return False  # a parameter outside the two nets (a learned prior), or a frozen one
    anchor = next(model.parameters())
    q = DiagonalGaussian(anchor.new_zeros(1, model.cfg.latent), anchor.new_zeros(1, model.cfg.latent))
    params = anchor.new_zeros(1, model.likelihood.n_params * model.info.dim)
    with torch.no_grad():
        return (model.prior.kl_closed_form_backward(q, anchor.new_ones(1)) is not None
                and model.likelihood.log_prob_backward(params, anchor.new_zeros(1, model.info.dim),
                                                       anchor.new_ones(1)) is not None)


def closed_elbo_step(model, objective) -> Step | None:
    """``step(x, y=None, progress=1.0)`` -> the terms ``objective(model, x, y, progress)``
    returns (the ELBO with the closed-form KL, one sample, beta-weighted), with autograd's
    gradient of -mean(objective) written into every parameter's ``.grad``; None where
    the model or one of its parts has no written-out backward."""
    if not (_replicates_vae(model) and _parts_write_out(model)):
        return None
    latent = model.cfg.latent
    grads: dict[tuple, torch.Tensor] = {}  # d loss / d objective per batch shape: autograd's (-1) / B

    def upstream(x: torch.Tensor) -> torch.Tensor:
        key = (x.shape[0], x.dtype, x.device)
        if key not in grads:
            grads[key] = (-x.new_ones(())).expand(x.shape[0]) / x.shape[0]
        return grads[key]

    def step(x: torch.Tensor, y: torch.Tensor | None = None, progress: float = 1.0) -> dict[str, torch.Tensor]:
        beta = objective.beta_at(progress)
        with torch.no_grad():
            c = model.condition(y)
            x_in = objective.encoder_input(x)
            h, enc_tape = model.encoder.forward_taped(x if x_in is None else x_in, c)
            q = DiagonalGaussian(*h.chunk(2, dim=-1))
            eps = q.noise(1)  # (1, B, Z)
            params, dec_tape = model.decoder.forward_taped(q.at(eps)[0], c)
            recon = model.likelihood.log_prob(params, x)
            kl = model.prior.kl_closed_form(q)
            elbo = recon - kl
            objective_terms = elbo if beta == 1.0 else recon - beta * kl
            g = upstream(x)  # loss = -mean(objective)
            g_kl = -g if beta == 1.0 else (-g) * beta
            d_z = model.decoder.backward_taped(dec_tape, model.likelihood.log_prob_backward(params, x, g),
                                               input_grad=True)
            d_mean, d_logvar = q.at_backward(eps, d_z[None, :, :latent])  # a condition's columns dropped
            kl_mean, kl_logvar = model.prior.kl_closed_form_backward(q, g_kl)
            model.encoder.backward_taped(enc_tape, torch.cat([kl_mean + d_mean, kl_logvar + d_logvar], dim=-1))
        return {"objective": objective_terms, "elbo": elbo, "recon": recon, "kl": kl}

    return step
