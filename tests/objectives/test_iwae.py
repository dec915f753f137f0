"""The IWAE bound: equals the ELBO at k = 1 on the same samples, grows with k on average,
and stays below the IS estimate at large k (Burda et al. 2015, theorem 1), for the
one-layer VAE, the two-stochastic-layer model and the VampPrior (the study's note 3
suspected its IWAE numbers; these are the checks that would have caught it)."""

import pytest
import torch

from vaelab.config import ModelConfig, ObjectiveConfig
from vaelab.evaluation import importance_sampled
from vaelab.models import DataInfo, build_model
from vaelab.objectives import build_objective
from vaelab.objectives.iwae import iwae_bound

MODELS = {
    "vae": dict(latent=5, hidden=(32,)),
    "hierarchical": dict(kind="hierarchical", latent=3, inner_latent=5, hidden=(32,), inner_hidden=(16,)),
    "vamp": dict(latent=5, hidden=(32,), prior="vamp", pseudo_inputs=20),
    "hierarchical-vamp": dict(kind="hierarchical", latent=3, inner_latent=5, hidden=(32,), inner_hidden=(16,),
                              prior="vamp", pseudo_inputs=20),
}


def random_model(seed=0, name="vae"):
    torch.manual_seed(seed)
    return build_model(ModelConfig(**MODELS[name]), DataInfo((1, 4, 4), binary=True))


def data(n=64):
    return torch.bernoulli(torch.full((n, 16), 0.3))


@pytest.mark.parametrize("name", list(MODELS))
def test_iwae_at_k1_equals_elbo_for_same_samples(name):
    model, x = random_model(name=name), data()
    torch.manual_seed(5)
    iw = build_objective(ObjectiveConfig(name="iwae", k=1))(model, x)
    torch.manual_seed(5)
    el = build_objective(ObjectiveConfig(name="elbo", k=1))(model, x)
    torch.testing.assert_close(iw["objective"], el["objective"], atol=1e-5, rtol=0)


@pytest.mark.parametrize("name", list(MODELS))
def test_iwae_bound_nondecreasing_in_k_and_below_is_estimate(name):
    model, x = random_model(name=name), data(100)
    torch.manual_seed(0)
    with torch.no_grad():
        means = []
        for k in (1, 5, 50, 500):
            # Average over repeats so the comparison is of expectations, not single draws.
            reps = torch.stack([iwae_bound(model.log_weights(x, k).log_w) for _ in range(5)])
            means.append(float(reps.mean()))
        is_ll = float(importance_sampled(model, x, None, k=5000)["log_likelihood"].mean())
    assert all(a <= b + 0.05 for a, b in zip(means, means[1:])), means
    assert means[-1] > means[0]  # strictly tighter overall on a random model
    assert means[-1] <= is_ll + 0.05, (means, is_ll)


def test_beta_one_is_exactly_the_elbo_and_beta_scales_kl():
    model, x = random_model(), data()
    torch.manual_seed(2)
    plain = build_objective(ObjectiveConfig(beta=1.0))(model, x)
    torch.manual_seed(2)
    beta4 = build_objective(ObjectiveConfig(beta=4.0))(model, x)
    assert torch.equal(plain["objective"], plain["elbo"])
    torch.testing.assert_close(beta4["objective"], beta4["recon"] - 4 * beta4["kl"])
    torch.testing.assert_close(beta4["elbo"], plain["elbo"])  # same samples, same true ELBO


def test_warmup_ramps_beta_linearly():
    obj = build_objective(ObjectiveConfig(beta=4.0, warmup_epochs=10))
    assert obj.beta_at(0.0) == 0.0
    assert obj.beta_at(5.0) == 2.0
    assert obj.beta_at(25.0) == 4.0


def test_all_k_samples_come_from_one_batched_pass():
    model, x = random_model(name="hierarchical"), data(8)
    calls = []
    real = model.log_weights

    def spy(*args, **kw):
        calls.append(args[1] if len(args) > 1 else kw.get("k"))
        return real(*args, **kw)

    model.log_weights = spy
    out = build_objective(ObjectiveConfig(name="iwae", k=50))(model, x)
    assert calls == [50] and out["objective"].shape == (8,)


def test_gradient_flows_through_the_normalised_weights():
    # Burda et al. eq. 14: d L_k / d log w_i = w_i / sum_j w_j (per example, before the mean).
    log_w = torch.randn(50, 4, requires_grad=True)
    iwae_bound(log_w).sum().backward()
    torch.testing.assert_close(log_w.grad, torch.softmax(log_w.detach(), dim=0))


@pytest.mark.parametrize("name", ["hierarchical", "vamp"])
def test_iwae_trains_every_parameter(name):
    model, x = random_model(name=name), data(16)
    build_objective(ObjectiveConfig(name="iwae", k=5))(model, x)["objective"].mean().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not missing, missing
