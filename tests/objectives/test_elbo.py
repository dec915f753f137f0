"""The ELBO's two KL estimators (``objective.kl``): the closed form (Kingma & Welling's
estimator B) and the KL at the samples (the mean of log w) have the same expectation and
the same reconstruction term; the closed form's gradient has no sampling noise, so at
q = p it is exactly zero where the sampled one is not.  The closed form is refused where
it does not exist."""

import math

import pytest
import torch

from vaelab.config import ModelConfig, ObjectiveConfig, RunConfig, load_config
from vaelab.distributions import DiagonalGaussian
from vaelab.distributions.priors import StandardNormalPrior
from vaelab.errors import ConfigError
from vaelab.models import DataInfo, build_model
from vaelab.objectives import build_objective
from vaelab.parts import resolve

INFO = DataInfo((1, 4, 4), binary=True)


def model_and_data(seed=0, n=64, **model):
    torch.manual_seed(seed)
    net = build_model(ModelConfig(latent=5, hidden=(32,), **model), INFO)
    return net, torch.bernoulli(torch.full((n, 16), 0.3))


def test_analytic_kl_is_the_closed_form_and_leaves_the_reconstruction_term_alone():
    model, x = model_and_data()
    torch.manual_seed(3)
    sampled = build_objective(ObjectiveConfig(kl="sampled"))(model, x)
    torch.manual_seed(3)
    analytic = build_objective(ObjectiveConfig(kl="analytic"))(model, x)
    q = model.posterior(x, None)
    torch.testing.assert_close(analytic["kl"], q.kl_standard_normal())
    torch.testing.assert_close(analytic["recon"], sampled["recon"])  # same z, same log p(x|z)
    torch.testing.assert_close(analytic["elbo"], analytic["recon"] - analytic["kl"])


def test_both_estimators_have_the_same_expectation():
    # The sampled KL's mean over L draws is within a few standard errors of the closed form.
    model, x = model_and_data(n=16)
    torch.manual_seed(0)
    with torch.no_grad():
        lw = model.log_weights(x, 20000)
        exact = lw.kl_closed_form
        mc, se = lw.kl.mean(0), lw.kl.std(0) / math.sqrt(20000)
    assert torch.all((mc - exact).abs() < 5 * se + 1e-4), (mc - exact) / se


def test_closed_form_gradient_is_noise_free_at_the_prior():
    # q = N(0, I) = p: KL = 0 with zero gradient; log q(z) - log p(z) at z = mu + sigma * eps
    # has gradient z with respect to mu (unit variance per dimension).
    mean = torch.zeros(1, 200, requires_grad=True)
    logvar = torch.zeros(1, 200, requires_grad=True)
    q, p = DiagonalGaussian(mean, logvar), StandardNormalPrior(None, 200, 16)
    assert torch.autograd.grad(p.kl_closed_form(q).sum(), mean)[0].abs().max() == 0
    torch.manual_seed(0)
    z = q.rsample(1)
    g = torch.autograd.grad((q.log_prob(z) - p.log_prob(z)).sum(), mean)[0]
    assert 0.7 < float(g.pow(2).mean()) < 1.3  # unit variance, 200 dimensions


@pytest.mark.parametrize("model, objective, match", [
    (dict(kind="hierarchical", latent=3, inner_latent=5, hidden=(32,), inner_hidden=(16,)), {}, "closed-form"),
    (dict(prior="vamp", pseudo_inputs=20), {}, "closed-form"),
    ({}, dict(name="iwae", k=5), "closed-form"),
    ({}, dict(kl="exact"), "sampled, analytic, auto"),
])
def test_analytic_kl_is_refused_where_it_has_no_meaning(model, objective, match):
    """Checked against what the parts say of themselves (closed_form_kl), not their names."""
    with pytest.raises(ConfigError, match=match):
        resolve(RunConfig.from_dict({"model": model, "objective": {"kl": "analytic", **objective}}))


def test_default_keeps_every_earlier_run_id():
    # objective.kl joined the config after run ids were stored: at "sampled" it is left out.
    assert "kl" not in RunConfig().to_dict()["objective"]
    assert RunConfig.from_dict({"objective": {"kl": "analytic"}}).to_dict()["objective"]["kl"] == "analytic"


@pytest.mark.parametrize("model, objective, resolved", [
    ({}, {}, "analytic"),
    (dict(kind="cvae"), dict(beta=4.0, noise="salt-pepper", noise_level=0.1), "analytic"),
    (dict(arch="conv"), {}, "analytic"),
    (dict(prior="vamp", pseudo_inputs=20), {}, "sampled"),
    (dict(kind="hierarchical"), {}, "sampled"),
    ({}, dict(name="iwae", k=5), "sampled"),
])
def test_auto_resolves_to_the_closed_form_where_it_exists(model, objective, resolved):
    cfg = resolve(RunConfig.from_dict({"model": model, "objective": {"kl": "auto", **objective}}))
    assert cfg.objective.kl == resolved  # the saved config names the estimator


def test_a_preset_with_auto_composes_with_parts_that_have_no_closed_form():
    assert resolve(load_config(preset="vae-tuned")).objective.kl == "analytic"
    iwae = resolve(load_config(preset="vae-cnn", overrides={"objective.name": "iwae", "objective.k": 5}))
    assert iwae.objective.kl == "sampled"
    assert resolve(load_config(preset="cvae", overrides={"model.prior": "vamp"})).objective.kl == "sampled"


def test_analytic_on_its_own_is_refused_by_a_model_without_a_closed_form():
    # RunConfig refuses the pairing up front; an ObjectiveConfig used directly must not
    # silently fall back to the KL at the sample.
    model, x = model_and_data(prior="vamp", pseudo_inputs=20)
    with pytest.raises(ConfigError, match="closed-form KL"):
        build_objective(ObjectiveConfig(kl="analytic"))(model, x)
