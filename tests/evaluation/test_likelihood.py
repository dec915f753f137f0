"""The importance-sampled estimator against a model with a closed-form marginal:
probabilistic PCA, p(z) = N(0, I), p(x|z) = N(Wz + b, s^2 I)  =>  p(x) = N(b, WW^T + s^2 I)."""

import math

import pytest
import torch
import torch.nn as nn

from vaelab.config import ModelConfig
from vaelab.distributions import LOG_2PI, Likelihood
from vaelab.evaluation import evaluate_model, importance_sampled
from vaelab.models import VAE, DataInfo

D, Z, S = 6, 2, 0.5


class FixedStdGaussian(Likelihood):
    n_params = 1

    def log_prob(self, params, x):
        return (-0.5 * ((x - params) / S) ** 2 - math.log(S) - 0.5 * LOG_2PI).sum(-1)


class AffineEncoder(nn.Module):
    """q(z|x) = N(A(x - b), diag(v)): exact for PPCA with the right A and v."""

    def __init__(self, A, b, logvar):
        super().__init__()
        self.A, self.b, self.logvar = A, b, logvar

    def forward(self, x, c=None):
        mean = (x - self.b) @ self.A.T
        return torch.cat([mean, self.logvar.expand_as(mean)], dim=-1)


class LinearDecoder(nn.Module):
    def __init__(self, W, b):
        super().__init__()
        self.W, self.b = W, b

    def forward(self, z, c=None):
        return z @ self.W.T + self.b


def ppca(seed=0, exact=True):
    g = torch.Generator().manual_seed(seed)
    # Orthogonal columns make W^T W diagonal, so the exact posterior is a diagonal Gaussian.
    Q, _ = torch.linalg.qr(torch.randn(D, Z, generator=g, dtype=torch.float64))
    W = Q * torch.tensor([2.0, 0.7], dtype=torch.float64)
    b = torch.randn(D, generator=g, dtype=torch.float64)
    # Exact posterior: Sigma = (I + W^T W / s^2)^-1, mean = Sigma W^T (x - b) / s^2.
    sigma = torch.linalg.inv(torch.eye(Z, dtype=torch.float64) + W.T @ W / S**2)
    A = sigma @ W.T / S**2
    logvar = torch.log(torch.diagonal(sigma))
    if not exact:  # a deliberately poor proposal: shrunk mean, too wide
        A = 0.6 * A
        logvar = logvar + 1.0
    model = VAE(ModelConfig(latent=Z, hidden=(4,)), DataInfo((1, 1, D), binary=False)).double()
    model.encoder = AffineEncoder(A, b, logvar)
    model.decoder = LinearDecoder(W, b)
    model.likelihood = FixedStdGaussian()
    marginal = torch.distributions.MultivariateNormal(b, W @ W.T + S**2 * torch.eye(D, dtype=torch.float64))
    x = marginal.sample((50,))
    return model, x, marginal.log_prob(x)


def test_is_estimate_is_exact_with_the_true_posterior():
    # With q = p(z|x) every weight equals p(x): the estimate and the ELBO are exact for any k.
    model, x, true = ppca(exact=True)
    torch.manual_seed(0)
    out = importance_sampled(model, x, None, k=10)
    torch.testing.assert_close(out["log_likelihood"], true, atol=1e-8, rtol=0)
    torch.testing.assert_close(out["elbo"], true, atol=1e-8, rtol=0)


def test_is_estimate_converges_to_log_px_and_elbo_stays_below():
    model, x, true = ppca(exact=False)
    torch.manual_seed(0)
    gaps = []
    for k in (1, 10, 100, 5000):
        out = importance_sampled(model, x, None, k=k, rows_per_chunk=4096)
        gaps.append(float((true - out["log_likelihood"]).mean()))
        # ELBO <= log p(x) for every image (it is a bound for each x, estimated with k samples).
        assert float((true - out["elbo"]).mean()) > 0
    assert gaps[0] > 0.1  # the poor proposal leaves a real gap at k = 1
    assert all(a >= b - 1e-3 for a, b in zip(gaps, gaps[1:]))  # the gap shrinks as k grows
    assert abs(gaps[-1]) < 0.02 * gaps[0] + 0.005, gaps  # and is nearly gone at k = 5000


class ScriptedWeights:
    """A stand-in model whose log weights are a fixed (k, B) table handed out in order."""

    def __init__(self, table):
        self.table, self.pos = table, 0

    def log_weights(self, x, m, y=None):
        chunk = self.table[self.pos:self.pos + m]
        self.pos += m
        zeros = torch.zeros_like(chunk)
        return type("LW", (), {"log_w": chunk, "log_px_z": chunk, "kl": zeros})()


@pytest.mark.parametrize("rows", [7, 64, 10**9])
def test_chunked_logsumexp_equals_one_big_pass(rows):
    # Weights spanning 1e4 nats: a naive exp-then-sum would overflow; logsumexp must not.
    table = torch.randn(1000, 5, dtype=torch.float64) * 3000
    out = importance_sampled(ScriptedWeights(table), torch.zeros(5, 1), None, k=1000, rows_per_chunk=rows)
    expected = torch.logsumexp(table, 0) - math.log(1000)
    torch.testing.assert_close(out["log_likelihood"], expected, atol=1e-9, rtol=0)
    torch.testing.assert_close(out["elbo"], table.mean(0), atol=1e-9, rtol=0)


def test_evaluate_model_is_repeatable_and_bounded():
    model, x, true = ppca(exact=False)
    a = evaluate_model(model, x, None, k=200, seed=3, progress=False)
    b = evaluate_model(model, x, None, k=200, seed=3, progress=False)
    assert a == b
    assert a.elbo < a.log_likelihood <= float(true.mean()) + 3 * a.log_likelihood_sem + 1e-3
