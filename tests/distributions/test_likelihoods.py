import math

import pytest
import torch

from vaelab.config import ModelConfig
from vaelab.distributions import BernoulliLikelihood, GaussianLikelihood


def test_bernoulli_matches_torch_distributions():
    logits = 3 * torch.randn(5, 784)
    x = torch.bernoulli(torch.rand(5, 784))
    ref = torch.distributions.Bernoulli(logits=logits).log_prob(x).sum(-1)
    torch.testing.assert_close(BernoulliLikelihood().log_prob(logits, x), ref, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("logit", [-1e4, -100.0, 100.0, 1e4])
def test_bernoulli_finite_at_extreme_logits_and_exact_pixels(logit):
    lik = BernoulliLikelihood()
    params = torch.full((1, 4), logit)
    for x in (torch.zeros(1, 4), torch.ones(1, 4)):
        value = lik.log_prob(params, x)
        assert torch.isfinite(value).all()
        # The right pixel value at an extreme logit costs ~0 nats; the wrong one ~|logit|.
        right = (x[0, 0] == 1) == (logit > 0)
        expected = 0.0 if right else -4 * abs(logit)
        assert value.item() == pytest.approx(expected, abs=1e-3 * max(1.0, abs(expected)))


def test_gaussian_matches_torch_distributions():
    lik = GaussianLikelihood(ModelConfig(gaussian_min_std=0.01))
    params = torch.randn(3, 2 * 10)
    x = torch.rand(3, 10)
    mean, std = lik.split(params)
    ref = torch.distributions.Normal(mean, std).log_prob(x).sum(-1)
    torch.testing.assert_close(lik.log_prob(params, x), ref, rtol=1e-5, atol=1e-4)


def test_gaussian_std_floor_bounds_the_density():
    min_std = 0.01
    lik = GaussianLikelihood(ModelConfig(gaussian_min_std=min_std))
    # The std can never fall below the floor, whatever the network outputs.
    params = torch.cat([torch.zeros(1, 5), torch.full((1, 5), -1e4)], dim=-1)
    _, std = lik.split(params)
    assert torch.all(std >= min_std)
    # Hence the density is bounded: log N(x; x, min_std^2) per pixel at most.
    x = torch.full((1, 5), 0.5)
    bound = 5 * (-math.log(min_std) - 0.5 * math.log(2 * math.pi))
    assert lik.log_prob(params, x).item() <= bound + 1e-3
