"""The two-stochastic-layer model (Burda et al. 2015): shapes, the decomposition of
log w into both layers, and the maths on a linear-Gaussian hierarchy whose marginal
p(x) is known in closed form:

    z2 ~ N(0, 1),  z1 | z2 ~ N(A z2 + a, s1^2 I),  x | z1 ~ N(W z1 + b, s^2 I)
    =>  x ~ N(W a + b, W (A A^T + s1^2 I) W^T + s^2 I).

With the exact posterior conditionals q(z1|x) = p(z1|x) and q(z2|z1) = p(z2|z1, x) =
p(z2|z1), every log weight equals log p(x), so the IS estimate and the ELBO are exact
for any k; with a poorer q the IS estimate must converge to log p(x) from below.
"""

import math

import pytest
import torch
import torch.nn as nn

from vaelab.config import ModelConfig
from vaelab.distributions import LOG_2PI, Likelihood
from vaelab.evaluation import importance_sampled
from vaelab.models import DataInfo, build_model
from vaelab.models.hierarchical import HierarchicalVAE

D, Z1, Z2, S, S1 = 4, 2, 1, 0.5, 0.6
F64 = torch.float64


def small(prior="normal", latent=3, **kw):
    cfg = ModelConfig(kind="hierarchical", hidden=(32, 32), inner_hidden=(16, 16), inner_latent=6,
                      latent=latent, prior=prior, pseudo_inputs=5, **kw)
    return build_model(cfg, DataInfo((1, 4, 4), binary=True))


def test_registered_and_built_as_burda_et_al():
    model = build_model(ModelConfig(kind="hierarchical", hidden=(200, 200), inner_hidden=(100, 100),
                                    inner_latent=100, latent=50), DataInfo((1, 28, 28), True))
    assert isinstance(model, HierarchicalVAE)
    widths = lambda net: [m.out_features for m in net.modules() if isinstance(m, nn.Linear)]  # noqa: E731
    assert widths(model.encoder) == [200, 200, 2 * 100]  # x -> z1
    assert widths(model.encoder2) == [100, 100, 2 * 50]  # z1 -> z2
    assert widths(model.decoder2) == [100, 100, 2 * 100]  # z2 -> z1
    assert widths(model.decoder) == [200, 200, 784]  # z1 -> x
    assert all(isinstance(m, nn.Tanh) for m in model.encoder.net[1::2])


@pytest.mark.parametrize("batch", [1, 100])
@pytest.mark.parametrize("prior", ["normal", "vamp"])
def test_shapes(batch, prior):
    model = small(prior)
    x = torch.bernoulli(torch.full((batch, 16), 0.4))
    lw = model.log_weights(x, 7)
    for t in (lw.log_px_z, lw.log_pz, lw.log_qz_x):
        assert t.shape == (7, batch) and torch.isfinite(t).all()
    model.eval()
    assert model.sample(batch).shape == (batch, 16)
    assert model.reconstruct(x).shape == (batch, 16)
    assert model.latent_means(x).shape == (batch, 3)
    assert model.decode_mean(torch.randn(batch, 3)).shape == (batch, 16)


def test_log_weights_are_the_sum_over_both_layers():
    model = small()
    x = torch.bernoulli(torch.full((5, 16), 0.4))
    torch.manual_seed(3)
    lw = model.log_weights(x, 4)
    # Replay the same draws by hand: eps1 (4, 5, Z1) then eps2 (1, 4, 5, Z2).
    torch.manual_seed(3)
    q1 = model.posterior(x)
    z1 = q1.mean + q1.std * torch.randn(4, 5, 6)
    q2 = model.posterior2(z1)
    z2 = q2.mean + q2.std * torch.randn(1, 4, 5, 3)[0]
    p1 = model.prior1(z2)
    log_pz = p1.log_prob(z1) + (-0.5 * (z2 ** 2 + LOG_2PI)).sum(-1)
    log_qz = q1.log_prob(z1) + q2.log_prob(z2)
    logits = model.decoder(z1.reshape(20, 6)).reshape(4, 5, 16)
    log_px = torch.distributions.Bernoulli(logits=logits).log_prob(x).sum(-1)
    torch.testing.assert_close(lw.log_pz, log_pz)
    torch.testing.assert_close(lw.log_qz_x, log_qz)
    torch.testing.assert_close(lw.log_px_z, log_px)


def test_vampprior_sits_on_the_top_latent():
    model = small("vamp", latent=3)
    assert model.prior.latent == 3 and model.prior.pseudo.shape == (5, 16)
    z2 = torch.randn(4, 3)
    q = model.prior_encoder(model.prior.pseudo_inputs())
    assert q.mean.shape == (5, 3)
    expected = torch.logsumexp(q.log_prob(z2.unsqueeze(1)), 1) - math.log(5)
    torch.testing.assert_close(model.prior.log_prob(z2, model.prior_encoder), expected)


# --- the linear-Gaussian hierarchy ------------------------------------------------------


class FixedStdGaussian(Likelihood):
    n_params = 1

    def log_prob(self, params, x):
        return (-0.5 * ((x - params) / S) ** 2 - math.log(S) - 0.5 * LOG_2PI).sum(-1)


class Affine(nn.Module):
    """in -> [M in + m, logvar] (a Gaussian's parameters) or M in + m (a mean only)."""

    def __init__(self, M, m, logvar=None):
        super().__init__()
        self.M, self.m, self.logvar = M, m, logvar

    def forward(self, v, c=None):
        mean = v @ self.M.T + self.m
        if self.logvar is None:
            return mean
        return torch.cat([mean, self.logvar.expand_as(mean)], dim=-1)


def linear_hierarchy(exact=True, seed=0):
    g = torch.Generator().manual_seed(seed)
    A = torch.tensor([[1.5], [0.0]], dtype=F64)  # (Z1, Z2): keeps every posterior diagonal
    a = torch.randn(Z1, generator=g, dtype=F64)
    Q, _ = torch.linalg.qr(torch.randn(D, Z1, generator=g, dtype=F64))
    W = Q * torch.tensor([2.0, 0.8], dtype=F64)  # orthogonal columns: W^T W diagonal
    b = torch.randn(D, generator=g, dtype=F64)
    prior_cov1 = A @ A.T + S1 ** 2 * torch.eye(Z1, dtype=F64)  # marginal cov of z1 (diagonal)
    # q(z1 | x) = p(z1 | x): precision P1 = cov1^-1 + W^T W / s^2, mean = P1^-1 (cov1^-1 a + W^T (x - b) / s^2)
    P1 = torch.linalg.inv(prior_cov1) + W.T @ W / S ** 2
    C1 = torch.linalg.inv(P1)
    enc_M, enc_m = C1 @ W.T / S ** 2, C1 @ torch.linalg.solve(prior_cov1, a) - C1 @ W.T @ b / S ** 2
    enc_logvar = torch.log(torch.diagonal(C1))
    # q(z2 | z1) = p(z2 | z1): precision 1 + A^T A / s1^2, mean = var * A^T (z1 - a) / s1^2
    var2 = 1.0 / (1.0 + (A.T @ A).item() / S1 ** 2)
    enc2_M, enc2_m = var2 * A.T / S1 ** 2, -(var2 * A.T @ a / S1 ** 2)
    enc2_logvar = torch.log(torch.tensor([var2], dtype=F64))
    if not exact:  # a deliberately poor proposal for both layers
        enc_M, enc_logvar = 0.8 * enc_M, enc_logvar + 0.7
        enc2_M, enc2_logvar = 0.8 * enc2_M, enc2_logvar + 0.7
    model = build_model(ModelConfig(kind="hierarchical", hidden=(4,), inner_hidden=(4,), inner_latent=Z1,
                                    latent=Z2), DataInfo((1, 1, D), binary=False)).double()
    model.encoder = Affine(enc_M, enc_m, enc_logvar)
    model.encoder2 = Affine(enc2_M, enc2_m, enc2_logvar)
    model.decoder2 = Affine(A, a, torch.log(torch.full((Z1,), S1 ** 2, dtype=F64)))
    model.decoder = Affine(W, b)
    model.likelihood = FixedStdGaussian()
    cov_x = W @ prior_cov1 @ W.T + S ** 2 * torch.eye(D, dtype=F64)
    marginal = torch.distributions.MultivariateNormal(W @ a + b, cov_x)
    x = marginal.sample((40,))
    return model, x, marginal.log_prob(x)


def test_exact_posterior_makes_every_weight_log_px():
    model, x, true = linear_hierarchy(exact=True)
    lw = model.log_weights(x, 10)
    torch.testing.assert_close(lw.log_w, true.expand(10, -1), atol=1e-8, rtol=0)


def test_is_estimate_converges_to_log_px_with_a_poor_proposal():
    model, x, true = linear_hierarchy(exact=False)
    torch.manual_seed(0)
    gaps = []
    for k in (1, 10, 100, 3000):
        out = importance_sampled(model, x, None, k=k)
        gaps.append(float((true - out["log_likelihood"]).mean()))
        assert float((true - out["elbo"]).mean()) > 0  # the ELBO stays below log p(x)
    assert gaps[0] > 0.1, gaps  # a real gap at k = 1
    # shrinks with k (up to Monte Carlo noise of a 40-image mean) and is gone at k = 3000
    assert all(g1 >= g2 - 0.05 for g1, g2 in zip(gaps, gaps[1:])), gaps
    assert abs(gaps[-1]) < 0.01 * gaps[0] + 0.01, gaps


def test_decode_mean_and_latent_means_follow_the_mean_paths():
    model = small().eval()
    z2 = torch.randn(3, 3)
    z1 = model.decoder2(z2).chunk(2, dim=-1)[0]  # E[z1 | z2]
    torch.testing.assert_close(model.decode_mean(z2), torch.sigmoid(model.decoder(z1)))
    x = torch.bernoulli(torch.full((4, 16), 0.4))
    m1 = model.encoder(x).chunk(2, dim=-1)[0]  # E[z1 | x]
    torch.testing.assert_close(model.latent_means(x), model.encoder2(m1).chunk(2, dim=-1)[0])
    torch.testing.assert_close(model.reconstruct(x), torch.sigmoid(model.decoder(m1)))


def test_calling_a_model_is_log_weights():
    """model(x, k) is model.log_weights(x, k) for every model kind: a standard forward, so
    hooks and wrappers work."""
    for kind in ("vae", "hierarchical"):
        m = build_model(ModelConfig(kind=kind, hidden=(8,), inner_hidden=(8,), inner_latent=4, latent=3),
                        DataInfo((1, 4, 4), binary=True))
        x = torch.bernoulli(torch.full((5, 16), 0.3))
        torch.manual_seed(3)
        a = m(x, 7)
        torch.manual_seed(3)
        b = m.log_weights(x, 7)
        torch.testing.assert_close(a.log_w, b.log_w)
        assert a.log_w.shape == (7, 5)
