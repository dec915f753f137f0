"""Every model preset (configs/models/*.yaml): build, shapes for batch sizes 1 and 100,
one training step of its own objective, a save/reload round trip, and (slow) a short
training run on real MNIST whose test ELBO must improve."""

import dataclasses

import pytest
import torch
from safetensors.torch import load_file, save_file

from vaelab.config import load_config, preset_names
from vaelab.parts import resolve
from vaelab.evaluation import evaluate_model
from vaelab.evaluation.run import evaluate_run
from vaelab.models import DataInfo, build_model
from vaelab.objectives import build_objective
from vaelab.training import optim
from vaelab.training.loop import Trainer

PRESETS = preset_names()
MNIST = DataInfo((1, 28, 28), binary=True, num_classes=10)


def batch(n, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.bernoulli(torch.full((n, 784), 0.2), generator=g), torch.randint(10, (n,), generator=g)


def build(name, latent=20):
    cfg = load_config(preset=name, overrides={"model.latent": latent})
    torch.manual_seed(0)
    return cfg, build_model(cfg.model, MNIST)


def test_the_study_presets_are_all_there():
    assert {"vae", "vae-tuned", "vae-cnn", "iwae", "dvae", "beta-vae", "cvae", "vampprior", "hvae"} <= set(PRESETS)


@pytest.mark.parametrize("n", [1, 100])
@pytest.mark.parametrize("name", PRESETS)
def test_shapes(name, n):
    cfg, model = build(name, latent=3)
    x, y = batch(n)
    lw = model.log_weights(x, 2, y)  # train mode (batch norm on batch statistics)
    for t in (lw.log_px_z, lw.log_pz, lw.log_qz_x):
        assert t.shape == (2, n) and torch.isfinite(t).all()
    model.eval()
    assert model.log_weights(x, 2, y).log_w.shape == (2, n)
    assert model.sample(n, y).shape == (n, 784)
    assert model.reconstruct(x, y).shape == (n, 784)
    assert model.latent_means(x, y).shape == (n, 3)
    assert model.decode_mean(torch.randn(n, 3), y).shape == (n, 784)


@pytest.mark.parametrize("name", PRESETS)
def test_one_training_step_of_its_own_objective(name):
    cfg, model = build(name)
    opt = optim.build_optimizer(model.parameters(), cfg.optim)
    terms = build_objective(cfg.objective)(model, *batch(8))
    assert set(terms) >= {"objective", "elbo"} and terms["objective"].shape == (8,)
    before = {k: v.detach().clone() for k, v in model.named_parameters()}
    loss = -terms["objective"].mean()
    assert torch.isfinite(loss)
    opt.zero_grad()
    loss.backward()
    opt.step()
    unchanged = [k for k, v in model.named_parameters() if torch.equal(v, before[k])]
    assert not unchanged, unchanged  # every part of the preset is trained


@pytest.mark.parametrize("name", PRESETS)
def test_save_and_reload_round_trip(name, tmp_path):
    cfg, model = build(name)
    x, y = batch(3)
    build_objective(cfg.objective)(model, x, y)  # a train-mode pass moves batch-norm statistics
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(tmp_path / "m.safetensors"))
    torch.manual_seed(123)  # a differently initialised copy
    again = build_model(cfg.model, MNIST)
    again.load_state_dict(load_file(str(tmp_path / "m.safetensors")))
    model.eval(), again.eval()
    torch.manual_seed(5)
    a = model.log_weights(x, 4, y).log_w
    torch.manual_seed(5)
    b = again.log_weights(x, 4, y).log_w
    assert torch.equal(a, b)


COMBINATIONS = {
    "cnn-iwae": ("vae-cnn", {"objective.name": "iwae", "objective.k": 5}),
    "vampprior-cvae": ("cvae", {"model.prior": "vamp", "model.pseudo_inputs": 20}),
    "cnn-cvae": ("cvae", {"model.arch": "conv"}),
    "cnn-hierarchy": ("iwae", {"model.arch": "conv", "objective.k": 3}),
    "vamp-hierarchy-dvae": ("hvae", {"model.prior": "vamp", "model.pseudo_inputs": 20,
                                     "objective.noise": "salt-pepper", "objective.noise_level": 0.1}),
    "beta-vae-warmup": ("beta-vae", {"objective.warmup_epochs": 5}),
}


@pytest.mark.parametrize("combo", list(COMBINATIONS))
def test_combinations_the_study_never_tried_just_work(combo):
    preset, overrides = COMBINATIONS[combo]
    cfg = load_config(preset=preset, overrides={"model.latent": 4, **overrides})
    torch.manual_seed(0)
    model = build_model(cfg.model, MNIST)
    opt = optim.build_optimizer(model.parameters(), cfg.optim)
    x, y = batch(6)
    loss = -build_objective(cfg.objective)(model, x, y, progress=1.0)["objective"].mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
    model.eval()
    lw = model.log_weights(x, 3, y)
    assert lw.log_w.shape == (3, 6) and torch.isfinite(lw.log_w).all()
    assert model.sample(2, y[:2]).shape == (2, 784)


@pytest.mark.parametrize("name", PRESETS)
def test_every_preset_starts_at_the_mean_image(name):
    """model.output_bias: data puts logit(mean training pixel) in the decoder's output bias,
    whatever the architecture; and the weights follow model.init."""
    cfg = resolve(load_config(preset=name, overrides={"model.latent": 4}))
    mean = torch.linspace(0.0, 1.0, 784, dtype=torch.float64)  # includes pixels always 0 and always 1
    info = DataInfo((1, 28, 28), binary=True, num_classes=10, pixel_mean=tuple(mean.tolist()))
    model = build_model(cfg.model, info)
    expected = torch.logit(mean.clamp(1e-3, 1 - 1e-3)).float()
    torch.testing.assert_close(model.decoder.output_bias.detach()[:784], expected)
    assert cfg.model.init == ("torch" if cfg.model.arch == "conv" else
                              "he" if cfg.model.activation == "relu" else "glorot")
    zero = build_model(dataclasses.replace(cfg.model, output_bias="zero"), info)
    assert float(zero.decoder.output_bias.detach().abs().max()) == 0.0


# --- smoke: a few hundred steps of every preset on real MNIST --------------------------

# Kept to the preset except what only costs time: batch 10 on 1000 images for 2 epochs
# (200 steps), and the IWAE's k and the VampPrior's K cut to 5 and 50 (the code paths
# are the same; tests/objectives/test_iwae.py checks the bound itself).
SMOKE = {"data.train_limit": 1000, "data.test_limit": 200, "train.batch_size": 10, "train.epochs": 2,
         "train.seed": 0}
CHEAPER = {"iwae": {"objective.k": 5}, "vampprior": {"model.pseudo_inputs": 50},
           # batch norm at the study's lr 1e-2 needs batches larger than 10: 100 steps of 50
           "vae-cnn": {"train.batch_size": 50, "train.epochs": 5}}


@pytest.mark.slow
@pytest.mark.parametrize("name", PRESETS)
def test_short_training_improves_the_test_elbo(name, data_dir, tmp_path):
    cfg = load_config(preset=name, overrides={**SMOKE, **CHEAPER.get(name, {})})
    trainer = Trainer.open(cfg, tmp_path / name, progress=False).build(data_dir)
    test = trainer.ds.test
    y = test.y if trainer.model.cond_dim else None
    before = evaluate_model(trainer.model, test.x, y, k=5, progress=False)
    trainer.fit()
    # the honest path: reload the checkpoint, clean test data, beta = 1, k-sample IS
    after = evaluate_run(tmp_path / name, k=5, data_dir=data_dir, progress=False)
    assert after["epoch"] == cfg.train.epochs
    # The start has its output bias at the mean image (test_every_preset_starts_at_the_mean_image);
    # 200 steps must improve on it, and reach the independent-pixel model's exact
    # log-likelihood (what the bias alone gives) or come within a few nats of it.
    mean = trainer.train_x.double().mean(0).clamp(1e-3, 1 - 1e-3)
    baseline = float((test.x * mean.log() + (1 - test.x) * (1 - mean).log()).sum(1).mean())
    assert after["elbo"] > before.elbo + 2, (before.elbo, after["elbo"])
    assert after["log_likelihood"] > baseline - 5, (after["log_likelihood"], baseline)
    assert after["elbo"] <= after["log_likelihood"] + 1e-6  # the ELBO is below the IS estimate
