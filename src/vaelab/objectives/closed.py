"""The ELBO's gradient written out by hand, for a one-layer VAE whose every part writes
out its own: the nets' backward (:meth:`~vaelab.nets.mlp.MLP.backward_taped`), the
likelihood's gradient in its parameters, the reparameterisation's backward, and the
closed-form KL's gradient.  The training loop uses it in place of autograd wherever it
is available (``VAELAB_STEP=closed``, the default; ``autograd`` turns it off).

Why: a step of the study's MLP VAE on the CPU is a few GEMMs of 100 rows and, under
autograd, some hundred small ops with their graph bookkeeping; written out, the same
gradient takes about half as many ops, no graph, and gradient GEMMs that write straight
into ``.grad`` in its own layout (BENCHMARKS.md, "The closed-form step").

What changes: the forward pass runs the same ops as :meth:`VAE.log_weights`, so the
per-example terms (and the loss the NaN guard reads) are the same numbers; the gradient
is the same sum written in another order, so it differs from autograd's in the last bits
(tests/objectives/test_closed.py checks it against autograd's to float64 round-off).
The random draws are the same, in the same order: a run resumes bit for bit either way.
"""

from __future__ import annotations

from typing import Callable

import torch

from ..distributions import DiagonalGaussian
from ..errors import env_choice

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
    from ..models.base import VAE

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
        return (model.prior.kl_closed_form_grad(q) is not None
                and model.likelihood.log_prob_grad(params, anchor.new_zeros(1, model.info.dim)) is not None)


def closed_elbo_step(model, objective) -> Step | None:
    """``step(x, y=None, progress=1.0)`` -> the terms ``objective(model, x, y, progress)``
    returns (the ELBO with the closed-form KL, one sample, beta-weighted), with the
    gradient of -mean(objective) written into every parameter's ``.grad``; None where
    the model or one of its parts has no written-out gradient."""
    if not (_replicates_vae(model) and _parts_write_out(model)):
        return None
    latent = model.cfg.latent

    def step(x: torch.Tensor, y: torch.Tensor | None = None, progress: float = 1.0) -> dict[str, torch.Tensor]:
        beta = objective.beta_at(progress)
        scale = 1.0 / x.shape[0]  # loss = -mean(recon - beta * kl)
        with torch.no_grad():
            c = model.condition(y)
            x_in = objective.encoder_input(x)
            h, enc_tape = model.encoder.forward_taped(x if x_in is None else x_in, c)
            q = DiagonalGaussian(*h.chunk(2, dim=-1))
            eps = q.noise(1)  # (1, B, Z)
            params, dec_tape = model.decoder.forward_taped(q.at(eps)[0], c)
            recon, d_params = model.likelihood.log_prob_grad(params, x)
            kl = model.prior.kl_closed_form(q)
            kl_mean, kl_logvar = model.prior.kl_closed_form_grad(q)
            d_z = model.decoder.backward_taped(dec_tape, d_params.mul_(-scale), input_grad=True)
            d_mean, d_logvar = q.at_backward(eps, d_z[None, :, :latent])  # a condition's columns dropped
            d_mean = d_mean.add_(kl_mean, alpha=beta * scale)
            d_logvar = d_logvar.add_(kl_logvar, alpha=beta * scale)
            model.encoder.backward_taped(enc_tape, torch.cat([d_mean, d_logvar], dim=-1))
            objective_terms = recon - kl if beta == 1.0 else recon - beta * kl
        return {"objective": objective_terms, "elbo": recon - kl, "recon": recon, "kl": kl}

    return step
