"""Learning quality: short, real trainings on the full data whose results must reach
numbers measured independently.

A model that trains is not a model that learns: every model family here trains for a
short budget on real data and its test importance-sampled log-likelihood (or ELBO) must
reach a threshold.  Each threshold is a number measured twice, by vaelab and by the
independent minimal implementation in ``benchmarks/reference/minimal_vae.py`` (no vaelab
import), on the same protocol, minus a margin for seed noise.  The margin is ~3 standard
errors of the test-set mean (printed by the evaluation, ~0.7 nats on 2000 images) plus the
seed-to-seed spread of the training (measured, ~1 nat at these budgets).

These tests fail when the models start from PyTorch's default weights and a zero output
bias (``model.init: torch``, ``model.output_bias: zero``: the "start reverted" numbers below;
``test_reverting_the_start_fails_the_threshold`` checks that for the 2-layer model), so they
are what holds docs/initialisation.md true.  They are the slow set (``-m slow``).
"""

from __future__ import annotations

import pytest

from vaelab.config import load_config
from vaelab.evaluation.run import evaluate_run
from vaelab.training import Trainer

pytestmark = pytest.mark.slow

# Burda et al.'s protocol at a short budget: dynamic binarisation, Adam 1e-3 (eps 1e-4),
# batch 100, 5 epochs on the 50k training images; k = 200 on the first 2000 test images.
BURDA_SHORT = {"data.binarize": "dynamic", "optim.name": "adam", "optim.lr": 1e-3, "optim.betas": [0.9, 0.999],
               "optim.eps": 1e-4, "train.batch_size": 100, "train.epochs": 5, "train.seed": 1,
               "objective.name": "elbo", "objective.k": 1}
EVAL = {"k": 200, "limit": 2000}


def train_and_eval(tmp_path, data_dir, preset: str | None, overrides: dict, k: int, limit: int | None) -> dict:
    cfg = load_config(preset=preset, overrides=overrides)
    Trainer.open(cfg, tmp_path / "run", progress=False).build(data_dir).fit()
    return evaluate_run(tmp_path / "run", k=k, limit=limit, data_dir=data_dir, progress=False)


# --- Burda et al.'s architectures, 5 epochs ---------------------------------------------
# IS log p(x), k = 200, 2000 test images (s.e. ~0.7):
#   model                         vaelab (seed 1)   reference (seed 0 / 1)   start reverted (torch + zero bias)
#   1 layer 784-200-200-50 tanh   -106.16           -106.16 / -105.98        -119.4
#   2 layers (hvae)               -106.70           -106.58                  -150.7
# Threshold -109: about 3 nats (4 s.e.) under both implementations.
ONE_LAYER = {**BURDA_SHORT, "model.kind": "vae", "model.arch": "mlp", "model.hidden": [200, 200],
             "model.activation": "tanh", "model.latent": 50}


@pytest.mark.parametrize("precision", ["float32", "bfloat16"])
def test_one_stochastic_layer_vae_learns(tmp_path, data_dir, precision):
    """bfloat16 (train.precision) meets the same threshold: its products round to 8 bits,
    its numbers are float32 evaluations (seed 1, 2026-12-07: -106.04 against float32's -106.16)."""
    out = train_and_eval(tmp_path, data_dir, None, {**ONE_LAYER, "train.precision": precision}, **EVAL)
    assert out["log_likelihood"] >= -109.0, out


def test_two_stochastic_layer_vae_learns(tmp_path, data_dir):
    out = train_and_eval(tmp_path, data_dir, "hvae", BURDA_SHORT, **EVAL)
    assert out["log_likelihood"] >= -109.0, out
    assert out["active_units"] >= 10, out  # the top layer is alive (0 active with the start reverted)


# The IWAE bound (k = 5) on the 2-layer model, 5 epochs on the first 20,000 images: -116.91
# (seed 1) with Burda et al.'s start, -147.6 with the start reverted.  Threshold -120: 3 nats
# (4 s.e.) under.
@pytest.mark.parametrize("precision", ["float32", "bfloat16"])
def test_iwae_two_layer_learns(tmp_path, data_dir, precision):
    """bfloat16 too (seed 1, 2026-12-07: -116.93 against float32's -116.95)."""
    over = {**BURDA_SHORT, "objective.name": "iwae", "objective.k": 5, "data.train_limit": 20000,
            "train.precision": precision}
    out = train_and_eval(tmp_path, data_dir, "iwae", over, **EVAL)
    assert out["log_likelihood"] >= -120.0, out


def test_reverting_the_start_fails_the_threshold(tmp_path, data_dir):
    """The thresholds can fail: the same 2-layer training from PyTorch's default weights
    and a zero output bias ends far below -109.  Two epochs are enough to show it (seed 1:
    reverted -177.0 with 0 active units, Burda et al.'s start -117.9)."""
    reverted = {**BURDA_SHORT, "train.epochs": 2, "model.init": "torch", "model.output_bias": "zero"}
    fixed = {**BURDA_SHORT, "train.epochs": 2}
    bad = train_and_eval(tmp_path / "bad", data_dir, "hvae", reverted, **EVAL)
    good = train_and_eval(tmp_path / "good", data_dir, "hvae", fixed, **EVAL)
    assert bad["log_likelihood"] < -109.0 and bad["active_units"] <= 2, bad
    assert good["log_likelihood"] > bad["log_likelihood"] + 30, (good, bad)


# --- the study's CNN VAE ------------------------------------------------------------------
# vae-cnn (lr 1e-2, as the study), N_z = 20, one epoch on 20,000 images, dynamic
# binarisation; IS k = 100 on 1000 test images (s.e. ~1.5), seed 1:
#   start: torch default weights + bias at the mean image (model.init auto)   -116.31
#          Glorot / He weights + bias at the mean image               -130.63 / -130.72
# The reference (Glorot, 2 epochs, k = 200 on 2000 images) reaches -112.92 at lr 1e-2 and
# -101.34 at lr 1e-3 (the study's 1e-2 is the slower at this budget).
# Threshold -120: 3.7 nats under the default start (2.5 s.e.), 10 above the other schemes.
def test_cnn_vae_learns(tmp_path, data_dir):
    over = {"data.binarize": "dynamic", "data.train_limit": 20000, "model.latent": 20, "train.epochs": 1,
            "train.seed": 1}
    out = train_and_eval(tmp_path, data_dir, "vae-cnn", over, k=100, limit=1000)
    assert out["log_likelihood"] >= -120.0, out


# --- Frey Faces, the Gaussian decoder -------------------------------------------------------
# Kingma & Welling's Frey model (200 tanh, Gaussian decoder with the std floor), N_z = 5,
# Adam 1e-3, batch 100, 100 epochs; test ELBO on the 196 test faces (s.e. ~13 over faces;
# the same faces every time):
#   the independent reference (benchmarks/reference, its own split of 1769 faces)  1009.05
#   vaelab, model.init auto (seed 1)                                               1012.96
#   vaelab with the Adagrad 0.02 preset instead of Adam: 718.0; reverted start: 643.2
# Threshold 980: about 30 nats (2.3 s.e.) under both measurements.
def test_frey_gaussian_vae_learns(tmp_path, data_dir):
    if not (data_dir / "frey_rawface.mat").exists():
        pytest.skip("frey_rawface.mat not in the data folder")
    over = {"data.dataset": "frey", "model.hidden": [200], "model.latent": 5, "train.epochs": 100, "train.seed": 1,
            "optim.name": "adam", "optim.lr": 1e-3}
    out = train_and_eval(tmp_path, data_dir, "vae", over, k=100, limit=None)
    assert out["elbo"] >= 980.0, out


# --- the ELBO's KL estimator at a large latent size -----------------------------------------
# The study's CVAE at N_z = 200 (its Table 1 cell -76.39), 100 epochs, test ELBO on all 10,000
# seed-paper test images (results/README.md, "The KL estimator"):
#   the independent reference (closed-form KL, Glorot; benchmarks/reference --cond)  -77.04
#   vaelab, objective.kl: analytic (the preset), He / Glorot start                  -77.18 / -76.68
#   vaelab, objective.kl: sampled (the KL at the sample)                             -78.68
# The sampled KL adds unit-variance noise to the gradient of every posterior mean the model
# leaves at the prior (most of the 200 here).  At this test's budget (3 epochs, full data,
# k = 10 on the first 2000 test images, same images for both) it is clearly visible; test
# ELBO, seeds 1 / 2: analytic -108.03 / -106.21, sampled -110.89 / -110.13 (differences
# 2.86 / 3.92).  Thresholds: analytic >= -109.5 (1.5 under seed 1), difference >= 1.5.
def test_closed_form_kl_learns_faster_at_large_latent(tmp_path, data_dir):
    over = {"model.latent": 200, "data.binarize": "seed-paper", "train.epochs": 3, "train.seed": 1}
    analytic = train_and_eval(tmp_path / "a", data_dir, "cvae", over, k=10, limit=2000)
    sampled = train_and_eval(tmp_path / "s", data_dir, "cvae", {**over, "objective.kl": "sampled"}, k=10, limit=2000)
    assert analytic["elbo"] >= -109.5, analytic
    assert analytic["elbo"] - sampled["elbo"] >= 1.5, (analytic, sampled)
