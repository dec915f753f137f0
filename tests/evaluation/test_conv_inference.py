"""The IS evaluation runs conv nets in their inference form on the CPU (batch norm folded,
the last transposed convolution as a GEMM): the same numbers up to float rounding, and
the model it was given is left as it was."""

from __future__ import annotations

import torch

from vaelab.config import ModelConfig
from vaelab.evaluation import evaluate_model
from vaelab.evaluation import likelihood as lik
from vaelab.models import DataInfo, build_model
from vaelab.nets.conv import ConvDecoder, InferenceConvDecoder


def _conv_model():
    torch.manual_seed(0)
    model = build_model(ModelConfig(arch="conv", latent=4), DataInfo((1, 8, 8), True))
    for m in model.modules():  # batch norm that is not the identity
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    return model


def test_inference_form_evaluation_matches_the_model(monkeypatch):
    model = _conv_model().train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x = (torch.rand(6, 64) > 0.5).float()
    fast = evaluate_model(model, x, None, k=200, seed=7, progress=False)
    assert isinstance(model.decoder, ConvDecoder) and model.training  # handed back as it came
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    monkeypatch.setattr(lik, "inference_form", lambda model, device: model)
    ref = evaluate_model(model, x, None, k=200, seed=7, progress=False)
    # same draws, same weights: only float rounding apart (about 1e-6 nats per image)
    assert abs(fast.log_likelihood - ref.log_likelihood) < 1e-4
    assert abs(fast.elbo - ref.elbo) < 1e-4


def test_conv_decoder_is_replaced_in_a_copy():
    model = _conv_model()
    net = lik.inference_form(model, torch.device("cpu"))
    assert net is not model and isinstance(net.decoder, InferenceConvDecoder) and not net.training
    assert isinstance(model.decoder, ConvDecoder)


def test_mlp_models_are_left_alone():
    model = build_model(ModelConfig(hidden=(8,), latent=2), DataInfo((1, 4, 4), True))
    assert lik.inference_form(model, torch.device("cpu")) is model
