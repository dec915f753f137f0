import math

import pytest
import torch

from vaelab.distributions import DiagonalGaussian, standard_normal_log_prob


def test_log_prob_matches_torch_distributions():
    mean, logvar = torch.randn(7, 5), torch.randn(7, 5)
    q = DiagonalGaussian(mean, logvar)
    z = torch.randn(3, 7, 5)
    ref = torch.distributions.Normal(mean, torch.exp(0.5 * logvar)).log_prob(z).sum(-1)
    torch.testing.assert_close(q.log_prob(z), ref, rtol=1e-5, atol=1e-5)


def test_standard_normal_log_prob_closed_form():
    z = torch.randn(4, 6)
    ref = torch.distributions.Normal(0.0, 1.0).log_prob(z).sum(-1)
    torch.testing.assert_close(standard_normal_log_prob(z), ref)


def test_kl_of_equal_gaussians_is_zero():
    q = DiagonalGaussian(torch.zeros(3, 4), torch.zeros(3, 4))
    assert torch.equal(q.kl_standard_normal(), torch.zeros(3))


def test_kl_closed_form_matches_monte_carlo():
    torch.manual_seed(0)
    mean, logvar = torch.randn(2, 3), 0.5 * torch.randn(2, 3)
    q = DiagonalGaussian(mean, logvar)
    n = 400_000
    z = q.rsample(n)  # (n, 2, 3)
    mc = (q.log_prob(z) - standard_normal_log_prob(z))  # (n, 2)
    # The MC mean's standard error is std/sqrt(n); allow 5 of them.
    tol = 5 * mc.std(0) / math.sqrt(n)
    assert torch.all((mc.mean(0) - q.kl_standard_normal()).abs() < tol)


def test_rsample_moments_and_gradient_path():
    mean = torch.tensor([[1.0, -2.0]], requires_grad=True)
    logvar = torch.tensor([[0.0, math.log(4.0)]], requires_grad=True)
    z = DiagonalGaussian(mean, logvar).rsample(200_000)
    assert z.shape == (200_000, 1, 2)
    torch.testing.assert_close(z.mean(0), mean.detach(), atol=0.02, rtol=0)
    torch.testing.assert_close(z.std(0), torch.tensor([[1.0, 2.0]]), atol=0.02, rtol=0)
    z.sum().backward()  # reparameterised: gradients reach the parameters
    assert mean.grad is not None and logvar.grad is not None


@pytest.mark.parametrize("logvar", [80.0, -80.0])
def test_log_prob_finite_for_extreme_variances(logvar):
    q = DiagonalGaussian(torch.zeros(1, 3), torch.full((1, 3), logvar))
    assert torch.isfinite(q.log_prob(torch.ones(1, 3))).all()
