"""The denoising ELBO (Im et al. 2017, eq. 6): the encoder sees a corrupted x~, the
decoder is scored on the clean x.  Level 0 is the plain VAE exactly; the corruption is
what the noise registry promises; evaluation never sees it."""

import pytest
import torch

from vaelab.config import ModelConfig, ObjectiveConfig, load_config
from vaelab.data import corrupt
from vaelab.evaluation import importance_sampled
from vaelab.models import VAE, DataInfo
from vaelab.objectives import build_objective


def random_model(seed=0):
    torch.manual_seed(seed)
    return VAE(ModelConfig(latent=5, hidden=(32,)), DataInfo((1, 8, 8), binary=True))


def data(n=64):
    return torch.bernoulli(torch.full((n, 64), 0.3))


@pytest.mark.parametrize("noise", ["salt-pepper", "gaussian"])
@pytest.mark.parametrize("name", ["elbo", "iwae"])
def test_noise_level_zero_is_the_vae_exactly(noise, name):
    model, x = random_model(), data()
    torch.manual_seed(4)
    plain = build_objective(ObjectiveConfig(name=name, k=3))(model, x)
    torch.manual_seed(4)
    zero = build_objective(ObjectiveConfig(name=name, k=3, noise=noise, noise_level=0.0))(model, x)
    for key in plain:
        assert torch.equal(plain[key], zero[key]), key


class Spy:
    """Wraps a model and records what log_weights was given."""

    def __init__(self, model):
        self.model, self.calls = model, []

    def log_weights(self, x, k=1, y=None, x_in=None):
        self.calls.append((x, x_in))
        return self.model.log_weights(x, k, y, x_in)


def test_encoder_sees_corrupted_input_and_target_is_clean():
    model, x = random_model(), data(500)
    spy = Spy(model)
    build_objective(ObjectiveConfig(noise="salt-pepper", noise_level=0.2))(spy, x)
    (target, seen), = spy.calls
    assert target is x  # scored on the clean image
    flipped = float((seen != x).float().mean())
    # A hit pixel becomes 0 or 1 at random, so ~level/2 = 10% change; 32000 pixels: sd 0.17%.
    assert 0.09 < flipped < 0.11, flipped
    assert set(seen.unique().tolist()) <= {0.0, 1.0}


def test_denoising_bound_is_the_replayed_formula():
    model, x = random_model(), data()
    torch.manual_seed(9)
    out = build_objective(ObjectiveConfig(noise="gaussian", noise_level=0.3))(model, x)
    torch.manual_seed(9)
    x_tilde = corrupt(x, "gaussian", 0.3)
    q = model.posterior(x_tilde)
    z = q.rsample(1)
    log_w = (model.likelihood.log_prob(model.decode(z), x) + model.prior.log_prob(z) - q.log_prob(z))[0]
    torch.testing.assert_close(out["elbo"], log_w)
    torch.testing.assert_close(out["objective"], log_w)


def test_denoising_bound_is_still_below_log_px():
    # q(z | x~) is a valid proposal for each x~, so E[log w] <= log p(x) for the clean x.
    model, x = random_model(), data(100)
    obj = build_objective(ObjectiveConfig(noise="salt-pepper", noise_level=0.05))
    torch.manual_seed(0)
    with torch.no_grad():
        bound = float(torch.stack([obj(model, x)["elbo"] for _ in range(20)]).mean())
        is_ll = float(importance_sampled(model, x, None, k=2000)["log_likelihood"].mean())
    assert bound < is_ll, (bound, is_ll)


def test_dvae_preset_is_vae_tuned_plus_noise():
    dvae, tuned = load_config(preset="dvae"), load_config(preset="vae-tuned")
    assert (dvae.objective.noise, dvae.objective.noise_level) == ("salt-pepper", 0.05)
    assert dvae.model == tuned.model and dvae.optim == tuned.optim and dvae.train == tuned.train
    assert dvae.objective.name == "elbo" and dvae.objective.beta == 1.0


def test_evaluation_scores_clean_inputs():
    spy = Spy(random_model())
    x = data(4)
    importance_sampled(spy, x, None, k=10)
    assert spy.calls and all(seen is None and target is x for target, seen in spy.calls)
