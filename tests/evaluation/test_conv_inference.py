"""The IS evaluation runs conv nets in channels-last layout on the CPU (issue #13): same
numbers up to float rounding, and the model is handed back in its default layout."""

from __future__ import annotations

import torch

from vaelab.config import ModelConfig
from vaelab.evaluation import evaluate_model
from vaelab.evaluation import likelihood as lik
from vaelab.models import DataInfo, build_model


def test_channels_last_evaluation_matches_default_layout(monkeypatch):
    torch.manual_seed(0)
    info = DataInfo((1, 8, 8), True)
    model = build_model(ModelConfig(arch="conv", latent=4), info)
    for m in model.modules():  # batch norm that is not the identity
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    x = (torch.rand(6, 64) > 0.5).float()
    fast = evaluate_model(model, x, None, k=200, seed=7, progress=False)
    assert all(p.is_contiguous() for p in model.parameters())  # restored for checkpoints
    monkeypatch.setattr(lik, "_channels_last", lambda model, device: (lambda: None))
    ref = evaluate_model(model, x, None, k=200, seed=7, progress=False)
    assert abs(fast.log_likelihood - ref.log_likelihood) < 1e-4
    assert abs(fast.elbo - ref.elbo) < 1e-4


def test_mlp_models_are_left_alone():
    model = build_model(ModelConfig(hidden=(8,), latent=2), DataInfo((1, 4, 4), True))
    restore = lik._channels_last(model, torch.device("cpu"))
    restore()
    assert all(p.is_contiguous() for p in model.parameters())
