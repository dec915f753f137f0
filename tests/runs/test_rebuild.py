"""A run directory describes itself (STYLE.md habit 12): code that reads only its files,
config.json (``architecture``) and the checkpoint's safetensors, and knows nothing of
vaelab's nets or models, rebuilds the network and gets vaelab's numbers.

Everything below the imports is plain torch: an interpreter of the ``architecture``
record.  Nothing is hard-coded about strides, paddings, slopes, eps, the [mean, logvar]
split, the decoder's output grouping, the pseudo-input clipping or which latent is which;
where the record did not say it, this test could not know it.
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file

from vaelab.config import load_config
from vaelab.data import load_dataset
from vaelab.runs import export_bundle, load_trained
from vaelab.training import train_run

LOG_2PI = math.log(2 * math.pi)


# --- a reader that knows only the run directory ------------------------------------------


def read_run(path: Path) -> tuple[dict, dict[str, torch.Tensor]]:
    """(architecture record, model tensors by parameter name) of the newest checkpoint
    whose sha256 matches its sidecar."""
    arch = json.loads((path / "config.json").read_text())["architecture"]
    for sidecar in sorted((path / "checkpoints").glob("epoch-*.json"), reverse=True):
        weights = sidecar.with_suffix(".safetensors")
        if hashlib.sha256(weights.read_bytes()).hexdigest() == json.loads(sidecar.read_text())["sha256"]:
            tensors = load_file(str(weights))
            return arch, {k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")}
    raise AssertionError("no checkpoint")


def read_bundle(path: Path) -> tuple[dict, dict[str, torch.Tensor]]:
    """(architecture record, model tensors) of a model bundle: config.json and
    model.safetensors, whose sha256 config.json records."""
    record = json.loads((path / "config.json").read_text())
    weights = path / "model.safetensors"
    assert hashlib.sha256(weights.read_bytes()).hexdigest() == record["weights_sha256"]
    return record["architecture"], load_file(str(weights))


def run_net(net: dict, h: torch.Tensor, w: dict[str, torch.Tensor], cond: torch.Tensor | None = None) -> torch.Tensor:
    """A net's steps on a flat batch h (N, in)."""
    def p(name):
        return None if name is None else w[name]

    for s in net["steps"]:
        op = s["op"]
        if op == "linear":
            h = F.linear(h, w[s["weight"]], p(s["bias"]))
        elif op == "conv2d":
            h = F.conv2d(h, w[s["weight"]], p(s["bias"]), s["stride"], s["padding"], s["dilation"], s["groups"])
        elif op == "conv_transpose2d":
            h = F.conv_transpose2d(h, w[s["weight"]], p(s["bias"]), s["stride"], s["padding"], s["output_padding"],
                                   s["groups"], s["dilation"])
        elif op == "batch_norm2d":
            assert s["at_evaluation"] == "running statistics"
            h = F.batch_norm(h, w[s["running_mean"]], w[s["running_var"]], p(s["weight"]), p(s["bias"]),
                             training=False, eps=s["eps"])
        elif op == "reshape":
            h = h.reshape(s["shape"])
        elif op == "concat_condition":
            h = torch.cat([h, cond], dim=-1)
        elif op == "add":
            h = h + w[s["param"]]
        elif op == "tanh":
            h = torch.tanh(h)
        elif op == "relu":
            h = F.relu(h)
        elif op == "sigmoid":
            h = torch.sigmoid(h)
        elif op == "leaky_relu":
            h = F.leaky_relu(h, s["negative_slope"])
        elif op == "elu":
            h = F.elu(h, s["alpha"])
        elif op == "softplus":
            h = F.softplus(h, s["beta"], s["threshold"])
        elif op == "gelu":
            h = F.gelu(h, approximate=s["approximate"])
        else:
            raise AssertionError(f"unknown op {op}")
    return h


def gaussian_params(arch: dict, out: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    assert arch["posterior"]["params"] == ["mean", "logvar"]  # in this order, halves of the last dim
    mean, logvar = out.chunk(2, dim=-1)
    return mean, logvar


def log_normal(z, mean, logvar):
    return -0.5 * ((z - mean) ** 2 * torch.exp(-logvar) + logvar + LOG_2PI).sum(-1)


def log_likelihood_of(arch: dict, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """log p(x | z) from decoder outputs (k, B, P*D), grouped parameter-major."""
    lik = arch["likelihood"]
    assert lik["decoder_output"].startswith("parameter-major")
    if lik["name"] == "bernoulli":
        return (x * params - F.softplus(params)).sum(-1)
    assert lik["name"] == "gaussian" and lik["std"] == "min_std + softplus(b)" and lik["mean"] == "sigmoid(a)"
    a, b = params.chunk(2, dim=-1)
    mean, std = torch.sigmoid(a), lik["min_std"] + F.softplus(b)
    return (-0.5 * ((x - mean) / std) ** 2 - torch.log(std) - 0.5 * LOG_2PI).sum(-1)


def log_prior(arch: dict, z: torch.Tensor, w, posterior_of_u) -> torch.Tensor:
    prior = arch["prior"]
    if prior["name"] == "normal":
        return -0.5 * (z ** 2 + LOG_2PI).sum(-1)
    assert prior["name"] == "vamp"
    pseudo = prior["pseudo_inputs"]
    assert pseudo["u"].startswith("hardtanh(pseudo, 0, 1)")
    u = w[pseudo["param"]].clamp(0.0, 1.0)  # (K, D)
    mean, logvar = posterior_of_u(u)  # (K, Z)
    comp = log_normal(z.double().unsqueeze(-2), mean.double(), logvar.double())  # (..., K)
    return (torch.logsumexp(comp, -1) - math.log(prior["components"])).to(z.dtype)


def log_weights(arch: dict, w: dict, x: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(the encoder's output for x, log w (k, B)), drawing noise as randn((k, B, Z)) per
    latent in the order the record's log_weight formula samples them."""
    nets, b = arch["nets"], x.shape[0]
    enc = run_net(nets["encoder"], x, w)  # (B, 2 * size of the latent next to x)
    mean, logvar = gaussian_params(arch, enc)
    z = mean + torch.exp(0.5 * logvar) * torch.randn((k, *mean.shape))  # (k, B, Z)
    log_q = log_normal(z, mean, logvar)
    params = run_net(nets["decoder"], z.reshape(k * b, -1), w).reshape(k, b, -1)
    log_px = log_likelihood_of(arch, params, x)
    if arch["model"] == "vae":
        assert set(arch["latents"]) == {"z"} and arch["prior"]["over"] == "z"
        return enc, log_px + log_prior(arch, z, w, lambda u: gaussian_params(arch, run_net(nets["encoder"], u, w))) - log_q
    assert arch["model"] == "hierarchical" and arch["prior"]["over"] == "z2"
    assert arch["latents"]["z1"]["next_to_x"] and arch["latents"]["z2"]["meets_prior"]
    assert arch["conditionals"]["q(z2|z1)"]["net"] == "encoder2" and arch["conditionals"]["p(z1|z2)"]["net"] == "decoder2"
    mean2, logvar2 = gaussian_params(arch, run_net(nets["encoder2"], z, w))  # (k, B, Z2)
    z2 = mean2 + torch.exp(0.5 * logvar2) * torch.randn((1, *mean2.shape))[0]
    pm, plv = gaussian_params(arch, run_net(nets["decoder2"], z2, w))  # p(z1 | z2)

    def top(u):  # q(z2 | z1 = mean of q(z1 | u))
        return gaussian_params(arch, run_net(nets["encoder2"], gaussian_params(arch, run_net(nets["encoder"], u, w))[0], w))

    log_pz = log_normal(z, pm, plv) + log_prior(arch, z2, w, top)
    return enc, log_px + log_pz - log_q - log_normal(z2, mean2, logvar2)


# --- the test ----------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["run", "bundle"])
@pytest.mark.parametrize("preset", ["vae-cnn", "hvae", "vampprior"])
def test_a_run_directory_rebuilds_without_vaelab(preset, where, tmp_path, data_dir):
    """From a run directory, and from its bundle (`vaelab export`) after the run directory
    is gone."""
    cfg = load_config(preset=preset, overrides={
        "data.train_limit": 200, "data.test_limit": 50, "train.epochs": 1, "train.batch_size": 50,
        "train.device": "cpu", "model.pseudo_inputs": 20})
    train_run(cfg, tmp_path / "run", data_dir, progress=False)
    x = load_dataset(cfg.data, data_dir).test.x[:8]  # (8, D) binarised test images
    if where == "bundle":
        export_bundle(tmp_path / "run", tmp_path / "bundle")
        shutil.rmtree(tmp_path / "run")
        arch, w = read_bundle(tmp_path / "bundle")
        model = load_trained(tmp_path / "bundle")
    else:
        arch, w = read_run(tmp_path / "run")
        model = load_trained(tmp_path / "run")  # vaelab's own reading, in eval mode
    assert arch["model"] == cfg.model.kind
    k = 16

    torch.manual_seed(7)
    enc, log_w = log_weights(arch, w, x, k)
    torch.manual_seed(7)
    with torch.no_grad():
        ours = model.log_weights(x, k).log_w
        ours_enc = model.encoder(x)
    # Same numbers up to float32 rounding: within 1e-5 relative (log w is hundreds of nats)
    torch.testing.assert_close(enc, ours_enc, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(log_w, ours, rtol=1e-5, atol=1e-5)
    ll = torch.logsumexp(log_w, 0) - math.log(k)  # the importance-sampled log p(x)
    torch.testing.assert_close(ll, torch.logsumexp(ours, 0) - math.log(k), rtol=1e-5, atol=1e-5)
    print(f"{preset}: max |difference| encoder {float((enc - ours_enc).abs().max()):.2e}, "
          f"log w {float((log_w - ours).abs().max()):.2e} (log w ~ {float(ours.mean()):.1f})")

