"""The IWAE bound: equals the ELBO at k = 1 on the same samples, grows with k on average,
and stays below the IS estimate at large k (Burda et al. 2015, theorem 1)."""

import torch

from vaelab.config import ModelConfig, ObjectiveConfig
from vaelab.evaluate import importance_sampled
from vaelab.models import VAE, DataInfo
from vaelab.objectives import build_objective
from vaelab.objectives.iwae import iwae_bound


def random_model(seed=0):
    torch.manual_seed(seed)
    return VAE(ModelConfig(latent=5, hidden=(32,)), DataInfo((1, 4, 4), binary=True))


def data(n=64):
    return torch.bernoulli(torch.full((n, 16), 0.3))


def test_iwae_at_k1_equals_elbo_for_same_samples():
    model, x = random_model(), data()
    torch.manual_seed(5)
    iw = build_objective(ObjectiveConfig(name="iwae", k=1))(model, x)
    torch.manual_seed(5)
    el = build_objective(ObjectiveConfig(name="elbo", k=1))(model, x)
    torch.testing.assert_close(iw["objective"], el["objective"], atol=1e-5, rtol=0)


def test_iwae_bound_nondecreasing_in_k_and_below_is_estimate():
    model, x = random_model(), data(200)
    torch.manual_seed(0)
    with torch.no_grad():
        means = []
        for k in (1, 5, 50, 500):
            # Average over repeats so the comparison is of expectations, not single draws.
            reps = torch.stack([iwae_bound(model.log_weights(x, k).log_w) for _ in range(10)])
            means.append(float(reps.mean()))
        is_ll = float(importance_sampled(model, x, None, k=20000)["log_likelihood"].mean())
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
