"""The ELBO's backward written out by hand (objectives/closed.py) against autograd's.

Same model, same batch, same seed: the closed step's per-example terms and every
parameter's gradient equal autograd's bit for bit (it runs autograd's kernels on the same
operands in the same order), for every activation, for deeper and linear nets, the CVAE,
the beta-weighted and denoising objectives, in float32 and float64; and two runs of the
trainer, one per step, end on the same weights.  Where a part has no written-out
backward, or the objective is not the one-sample closed-form-KL ELBO, there is no closed
step.
"""

from __future__ import annotations

import pytest
import torch

from vaelab.config import ModelConfig, ObjectiveConfig, RunConfig
from vaelab.errors import ConfigError
from vaelab.models import DataInfo, build_model
from vaelab.objectives import build_objective
from vaelab.objectives.closed import step_mode
from vaelab.training import Trainer

INFO = DataInfo((1, 4, 4), binary=True, num_classes=10)


def _model(dtype, info=INFO, **model):
    torch.manual_seed(0)
    return build_model(ModelConfig(**{"latent": 5, "hidden": (32,), **model}), info).to(dtype)


def _grads_both_ways(model, objective, x, y=None, progress=0.5):
    torch.manual_seed(1)
    terms = objective(model, x, y, progress=progress)
    (-terms["objective"].mean()).backward()
    autograd = [p.grad.clone() for p in model.parameters()]
    model.zero_grad(set_to_none=True)
    step = objective.closed_step(model)
    assert step is not None
    torch.manual_seed(1)
    closed = step(x, y, progress)
    return terms, closed, autograd, [p.grad for p in model.parameters()]


def _batch(dtype, n=64):
    g = torch.Generator().manual_seed(2)
    return (torch.rand(n, 16, generator=g, dtype=dtype) > 0.6).to(dtype), torch.randint(0, 10, (n,), generator=g)


CASES = [
    ({"activation": act}, {}) for act in ("relu", "tanh", "softplus", "sigmoid", "leaky_relu", "elu", "gelu")
] + [
    ({"hidden": (32, 16)}, {}),  # two hidden layers
    ({"hidden": ()}, {}),  # linear nets
    ({"kind": "cvae"}, {}),  # the label concatenated to both nets' inputs
    ({}, {"beta": 0.5, "warmup_epochs": 2}),  # beta-VAE mid warm-up: beta = 0.125 at progress 0.5
    ({}, {"beta": 4.0}),  # beta-VAE after its warm-up
    ({}, {"noise": "gaussian", "noise_level": 0.2}),  # denoising: the encoder sees a corrupted copy
]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("model_kw,objective_kw", CASES)
def test_closed_gradient_is_autograds_bit_for_bit(model_kw, objective_kw, dtype):
    model = _model(dtype, **model_kw)
    objective = build_objective(ObjectiveConfig(kl="analytic", **objective_kw))
    x, y = _batch(dtype)
    terms, closed, autograd, grads = _grads_both_ways(model, objective, x, y)
    for name in ("objective", "elbo", "recon", "kl"):
        assert torch.equal(terms[name].detach(), closed[name]), name
    for (name, _), p_auto, p_closed in zip(model.named_parameters(), autograd, grads):
        assert p_auto.abs().max() > 0
        assert torch.equal(p_auto, p_closed), name


def test_at_the_study_s_size_on_two_threads():
    # 784-500-20 ReLU, batch 100: the GEMMs split over threads and the big elementwise kernels vectorised
    torch.set_num_threads(2)
    model = build_model(ModelConfig(latent=20, hidden=(500,), activation="relu"), DataInfo((1, 28, 28), True))
    x = (torch.rand(100, 784, generator=torch.Generator().manual_seed(4)) > 0.8).float()
    _, _, autograd, grads = _grads_both_ways(model, build_objective(ObjectiveConfig(kl="analytic")), x)
    assert all(torch.equal(a, b) for a, b in zip(autograd, grads))


def test_the_gradient_replaces_what_grad_held():
    # As after zero_grad: a second step on the same batch and seed gives the same .grad, not twice it.
    model = _model(torch.float64)
    step = build_objective(ObjectiveConfig(kl="analytic")).closed_step(model)
    x, _ = _batch(torch.float64)
    torch.manual_seed(1)
    step(x)
    first = [p.grad.clone() for p in model.parameters()]
    torch.manual_seed(1)
    step(x)
    assert all(torch.equal(a, p.grad) for a, p in zip(first, model.parameters()))


@pytest.mark.parametrize("model_kw,objective_kw", [
    ({}, {"kl": "sampled"}),  # the KL at the sample: log q - log p, not written out
    ({}, {"kl": "analytic", "k": 5}),  # more than one sample
    ({}, {"name": "iwae", "k": 5}),
    ({"arch": "conv"}, {"kl": "analytic"}),  # nets without a taped pass
    ({"likelihood": "gaussian"}, {"kl": "analytic"}),  # no written-out backward (the Frey Face VAE)
    ({"kind": "hierarchical"}, {"kl": "auto"}),  # two stochastic layers
    ({"prior": "vamp"}, {"kl": "auto"}),  # a learned prior: parameters outside the nets
])
def test_no_closed_step_where_a_part_does_not_write_its_gradient_out(model_kw, objective_kw):
    shape = (1, 28, 28) if model_kw.get("arch") == "conv" else (1, 4, 4)
    model = _model(torch.float32, DataInfo(shape, binary="likelihood" not in model_kw), **model_kw)
    assert build_objective(ObjectiveConfig(**objective_kw)).closed_step(model) is None


def test_a_hook_or_a_frozen_weight_turns_it_off():
    objective = build_objective(ObjectiveConfig(kl="analytic"))
    model = _model(torch.float32)
    handle = model.decoder.net[0].register_forward_hook(lambda *a: None)
    assert objective.closed_step(model) is None
    handle.remove()
    assert objective.closed_step(model) is not None
    model.encoder.net[0].weight.requires_grad_(False)
    assert objective.closed_step(model) is None


def _run_config() -> RunConfig:
    return RunConfig.from_dict({
        "model": {"hidden": [32], "latent": 4, "activation": "relu"},
        "objective": {"kl": "analytic"},
        "train": {"epochs": 2, "batch_size": 50, "seed": 3, "device": "cpu", "threads": 1},
    })


def test_a_run_trains_the_same_either_way(tmp_path, monkeypatch):
    """Two epochs of 500 images (20 Adam steps), one run per step: the same weights and
    metrics to the bit, and each metrics row says which step ran."""
    from tests.training.test_fast_path import tiny_dataset

    ds = tiny_dataset(500)
    runs = {}
    for mode in ("closed", "autograd"):
        monkeypatch.setenv("VAELAB_STEP", mode)
        tr = Trainer.open(_run_config(), tmp_path / mode, progress=False).build(dataset=ds)
        tr.fit()
        assert [row["step"] for row in tr.state.metrics] == [mode, mode]
        runs[mode] = tr
    for (name, a), b in zip(runs["closed"].model.named_parameters(), runs["autograd"].model.parameters()):
        assert torch.equal(a, b), name
    rows = [r.state.metrics[-1] for r in runs.values()]
    assert rows[0]["train_elbo"] == rows[1]["train_elbo"] and rows[0]["valid_elbo"] == rows[1]["valid_elbo"]


def test_a_bad_step_mode_is_one_clear_error(monkeypatch):
    monkeypatch.setenv("VAELAB_STEP", "fast")
    with pytest.raises(ConfigError, match="VAELAB_STEP='fast' is not a training step; use one of closed, autograd"):
        step_mode()


def test_the_cli_names_a_bad_step_mode_in_one_line_and_leaves_no_run(tmp_path):
    import subprocess
    import sys

    out = tmp_path / "run"
    res = subprocess.run([sys.executable, "-m", "vaelab.cli", "train", "--model", "vae-tuned", "--epochs", "1",
                          "--out", str(out)], capture_output=True, text=True,
                         env={"PATH": "", "VAELAB_STEP": "fast", "VAELAB_OFFLINE": "1"})
    assert res.returncode == 2
    assert res.stderr.strip().splitlines() == [
        "vaelab: error: VAELAB_STEP='fast' is not a training step; use one of closed, autograd"]
    assert not out.exists()
