"""The VampPrior (Tomczak & Welling 2018, eq. 9): its log-density is the uniform mixture
of the posterior at the pseudo-inputs, checked against torch.distributions computed
independently; its samples, gradients and place in a model."""

import math

import pytest
import torch
import torch.distributions as td

from vaelab.config import ModelConfig
from vaelab.distributions import DiagonalGaussian, VampPrior
from vaelab.distributions.vamp import mixture_log_prob
from vaelab.models import VAE, DataInfo

K, Z, D = 7, 3, 12


class LinearEncoder(torch.nn.Module):
    """u (K, D) -> q(z | u) with mean W u and a per-input logvar."""

    def __init__(self, scale=1.0, logvar_shift=0.0):
        super().__init__()
        self.W = torch.nn.Parameter(scale * torch.randn(2 * Z, D))
        self.shift = logvar_shift

    def forward(self, u):
        mean, logvar = (u @ self.W.T).chunk(2, dim=-1)
        return DiagonalGaussian(mean, logvar + self.shift)


def reference(prior, encoder, z):
    q = encoder(prior.pseudo_inputs())
    mix = td.MixtureSameFamily(
        td.Categorical(logits=torch.zeros(prior.num_components, dtype=z.dtype)),
        td.Independent(td.Normal(q.mean, q.std), 1),
    )
    return mix.log_prob(z)


def make(k=K, seed=0):
    torch.manual_seed(seed)
    return VampPrior(ModelConfig(pseudo_inputs=k), Z, D)


@pytest.mark.parametrize("lead", [(1,), (100,), (5, 4)])
def test_log_prob_equals_mixture_same_family(lead):
    prior = make()
    enc = LinearEncoder()
    z = torch.randn(*lead, Z) * 2
    torch.testing.assert_close(prior.log_prob(z, enc), reference(prior, enc, z), rtol=1e-5, atol=1e-4)


def test_sharp_components_stay_accurate_in_float32():
    # Posterior stds of 0.01 make the expanded quadratic form cancel terms of size
    # m^2 / v ~ 1e5; the float64 work keeps the float32 answer right.
    prior = make()
    enc = LinearEncoder(scale=3.0, logvar_shift=-9.0)
    q = enc(prior.pseudo_inputs())
    z = (q.mean[:4] + 0.01 * torch.randn(4, Z)).detach()  # near components: the hard case
    mix = td.MixtureSameFamily(td.Categorical(logits=torch.zeros(K, dtype=torch.float64)),
                               td.Independent(td.Normal(q.mean.double(), q.std.double()), 1))
    ref = mix.log_prob(z.double()).float()
    torch.testing.assert_close(prior.log_prob(z, enc), ref, rtol=0, atol=1e-3)


def test_one_component_is_that_gaussian():
    prior = make(k=1)
    enc = LinearEncoder()
    q = enc(prior.pseudo_inputs())
    z = torch.randn(10, Z)
    torch.testing.assert_close(prior.log_prob(z, enc), q.log_prob(z).expand(10), rtol=1e-5, atol=1e-5)


def test_identical_components_give_minus_log_k_nothing_else():
    mean, logvar = torch.randn(1, Z).expand(6, Z), torch.randn(1, Z).expand(6, Z)
    z = torch.randn(8, Z)
    single = DiagonalGaussian(mean[0], logvar[0]).log_prob(z)
    torch.testing.assert_close(mixture_log_prob(z, mean, logvar), single, rtol=1e-5, atol=1e-5)


def test_pseudo_inputs_are_images_and_learnable():
    prior = make(k=500)
    u = prior.pseudo_inputs().detach()
    assert u.shape == (500, D) and float(u.min()) >= 0 and float(u.max()) <= 1
    enc = LinearEncoder()
    prior.log_prob(torch.randn(4, Z), enc).sum().backward()
    assert prior.pseudo.grad is not None and prior.pseudo.grad.abs().sum() > 0
    assert enc.W.grad.abs().sum() > 0  # the encoder is trained through the prior too


@pytest.mark.parametrize("n", [1, 100])
def test_samples_come_from_the_components(n):
    prior = make()
    enc = LinearEncoder(logvar_shift=-20.0)  # near-deterministic components
    z = prior.sample(n, enc)
    assert z.shape == (n, Z)
    centres = enc(prior.pseudo_inputs()).mean  # (K, Z)
    dist = torch.cdist(z, centres).min(dim=1).values
    assert float(dist.detach().max()) < 1e-3


def test_sample_frequencies_are_uniform_over_components():
    torch.manual_seed(1)
    prior = make(k=4)
    enc = LinearEncoder(logvar_shift=-20.0)
    centres = enc(prior.pseudo_inputs()).mean
    z = prior.sample(4000, enc)
    counts = torch.bincount(torch.cdist(z, centres).argmin(1), minlength=4).float()
    # Each count is Binomial(4000, 1/4): sd 27; 5 sd is 137.
    assert float((counts - 1000).abs().max()) < 137, counts


def test_in_a_model_the_prior_uses_the_models_encoder():
    torch.manual_seed(0)
    model = VAE(ModelConfig(latent=Z, hidden=(16,), prior="vamp", pseudo_inputs=5), DataInfo((1, 3, 4), True))
    assert "prior.pseudo" in model.state_dict()
    assert not any(k.startswith("prior.encoder") for k in model.state_dict())  # weights stored once
    z = torch.randn(6, 2, Z)
    u = model.prior.pseudo_inputs()
    q = model.posterior(u)
    expected = torch.logsumexp(q.log_prob(z.unsqueeze(-2)), -1) - math.log(5)  # (6, 2, 5) -> (6, 2)
    torch.testing.assert_close(model.prior.log_prob(z, model.prior_encoder), expected, rtol=1e-5, atol=1e-5)
    assert model.log_weights(torch.rand(2, 12).round(), 6).log_w.shape == (6, 2)
