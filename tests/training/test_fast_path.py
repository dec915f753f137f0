"""Speed must not change results.

The optimised paths (the trainer's epoch-at-once binarisation and sliced batches, fused
optimiser kernels, the cache-blocked Bernoulli log-likelihood used by the IS evaluation)
against straightforward reference computations written out here, on the same data, seeds
and batches.

Tolerances: everything is float32 (eps = 1.2e-7).  A per-image log-likelihood sums ~64
terms of size ~1 (~40 nats), so two correct orders of summation differ by ~1e-5 nats
(observed: epoch means agree to 1e-6).  Parameters after 20 steps agree to 3e-8 (Adam,
SGD) and 5e-6 (Adagrad, whose per-coordinate 1/sqrt(sum g^2) turns rounding in a
near-zero gradient into a relative change of that coordinate's step).  The bounds are
about 10x the observed differences and far below what any real bug does: a wrong sign,
a missed sample or a skipped batch moves the loss by > 0.1 and weights by ~lr (1e-3).
"""

from __future__ import annotations

import copy
import math

import pytest
import torch
import torch.nn.functional as F

from vaelab.config import ModelConfig, OptimConfig, RunConfig
from vaelab.data import Dataset, Split
from vaelab.distributions import BernoulliLikelihood
from vaelab.distributions import likelihoods as lik_module
from vaelab.evaluation import evaluate_model
from vaelab.models import DataInfo, build_model
from vaelab.training import Trainer
from vaelab.training.loop import epoch_seed
from vaelab.training.optim import _kernel, build_optimizer

SHAPE = (1, 8, 8)
D = 64


def tiny_dataset(n_train: int, seed: int = 0) -> Dataset:
    g = torch.Generator().manual_seed(seed)

    def split(n):
        return Split(torch.rand(n, D, generator=g), torch.randint(0, 10, (n,), generator=g))

    return Dataset(name="mnist", train=split(n_train), valid=split(40), test=split(40), image_shape=SHAPE,
                   binary=True, num_classes=10, dynamic=True)


def tiny_config(optim: str, k: int) -> RunConfig:
    lr = {"adam": 1e-3, "adagrad": 0.02, "sgd": 0.01}[optim]
    return RunConfig.from_dict({
        "model": {"hidden": [32], "latent": 4},
        "objective": {"name": "iwae" if k > 1 else "elbo", "k": k},
        "optim": {"name": optim, "lr": lr},
        "train": {"epochs": 1, "batch_size": 50, "seed": 3, "device": "cpu"},
    })


def reference_optimizer(params, cfg: OptimConfig) -> torch.optim.Optimizer:
    """torch's plain per-tensor implementation (foreach=False, fused=False)."""
    if cfg.name == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, betas=cfg.betas, eps=cfg.eps, foreach=False)
    if cfg.name == "adagrad":
        return torch.optim.Adagrad(params, lr=cfg.lr, eps=cfg.eps, foreach=False)
    return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, foreach=False)


def reference_objective(model, x: torch.Tensor, k: int) -> torch.Tensor:
    """The bound for one batch, written out from the model's weights with torch's own
    distributions: encoder, reparameterisation (the same randn call), decoder,
    log p(x|z) as minus the logits' binary cross-entropy.  -> (B,)."""
    enc, dec = model.encoder.net, model.decoder.net
    h = torch.tanh(F.linear(x, enc[0].weight, enc[0].bias))
    mean, logvar = F.linear(h, enc[2].weight, enc[2].bias).chunk(2, dim=-1)  # (B, Z)
    std = torch.exp(0.5 * logvar)
    z = mean + std * torch.randn((k, *mean.shape))  # (k, B, Z)
    logits = F.linear(torch.tanh(F.linear(z, dec[0].weight, dec[0].bias)), dec[2].weight, dec[2].bias)
    log_px_z = -F.binary_cross_entropy_with_logits(logits, x.expand_as(logits), reduction="none").sum(-1)
    log_pz = torch.distributions.Normal(0.0, 1.0).log_prob(z).sum(-1)
    log_qz_x = torch.distributions.Normal(mean, std).log_prob(z).sum(-1)
    log_w = log_px_z + log_pz - log_qz_x  # (k, B)
    return torch.logsumexp(log_w, dim=0) - math.log(k)


@pytest.mark.parametrize("optim,k,n", [("adagrad", 1, 500), ("adam", 1, 530), ("sgd", 1, 500), ("adam", 5, 300)])
def test_trainer_epoch_equals_plain_reference_loop(tmp_path, optim, k, n):
    """Trainer._train_epoch (whole-epoch binarisation, one permutation, sliced batches, fused
    optimiser) vs a plain per-batch loop over the same draws: same losses, same weights."""
    cfg = tiny_config(optim, k)
    ds = tiny_dataset(n)
    trainer = Trainer.open(cfg, tmp_path / "run", progress=False).build(dataset=ds)
    assert trainer.opt.defaults.get("fused"), "the CPU trainer should use the fused optimiser"
    ref_model = copy.deepcopy(trainer.model)
    ref_opt = reference_optimizer(ref_model.parameters(), cfg.optim)

    for epoch in range(2):
        stats = trainer._train_epoch(epoch)

        # The reference: same seed, same draws in the same order, one batch at a time.
        torch.manual_seed(epoch_seed(cfg.train.seed, epoch))
        x_bin = torch.bernoulli(ds.train.x)
        order = torch.randperm(n)
        bs = cfg.train.batch_size
        total = 0.0
        for start in range(0, n, bs):
            x = x_bin[order[start:start + bs]]
            objective = reference_objective(ref_model, x, k)
            loss = -objective.mean()
            ref_opt.zero_grad()
            loss.backward()
            ref_opt.step()
            total += float(objective.detach().double().sum())

        torch.testing.assert_close(stats["train_objective"], total / n, rtol=1e-5, atol=1e-4)
        if k == 1:
            assert stats["train_elbo"] == stats["train_objective"]
        for (name, p), q in zip(trainer.model.named_parameters(), ref_model.parameters()):
            torch.testing.assert_close(p, q, rtol=1e-4, atol=5e-5, msg=lambda m: f"{name}: {m}")


def test_first_step_loss_is_the_reference_loss_on_the_same_batch_and_seed():
    """One batch, one seed: the library's objective and the written-out one agree to float
    rounding before any optimiser step can hide a difference."""
    cfg = tiny_config("adagrad", 1)
    torch.manual_seed(0)
    model = build_model(cfg.model, DataInfo(SHAPE, True))
    x = torch.bernoulli(torch.rand(50, D, generator=torch.Generator().manual_seed(1)))
    from vaelab.objectives import build_objective

    torch.manual_seed(7)
    ours = build_objective(cfg.objective)(model, x)["objective"]
    torch.manual_seed(7)
    ref = reference_objective(model, x, 1)
    torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("name", ["adam", "adagrad", "sgd"])
def test_fused_optimiser_equals_plain_optimiser(name):
    """build_optimizer picks torch's fused kernel on the CPU; 100 steps of it track the
    plain per-tensor implementation to float rounding."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(30, 50), torch.nn.Tanh(), torch.nn.Linear(50, 10))
    ref = copy.deepcopy(net)
    cfg = OptimConfig(name=name, lr=0.01, weight_decay=0.01)
    fast = build_optimizer(net.parameters(), cfg)
    assert fast.defaults.get("fused") is True
    plain = reference_optimizer(ref.parameters(), cfg)
    for group in plain.param_groups:
        group["weight_decay"] = 0.01
    g = torch.Generator().manual_seed(1)
    for _ in range(100):
        x = torch.randn(64, 30, generator=g)
        for model, opt in ((net, fast), (ref, plain)):
            opt.zero_grad()
            model(x).pow(2).mean().backward()
            opt.step()
    for p, q in zip(net.parameters(), ref.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)


def test_optimiser_kernel_falls_back_to_foreach_off_the_fused_devices():
    cpu = [torch.nn.Parameter(torch.zeros(3))]
    meta = [torch.nn.Parameter(torch.zeros(3, device="meta"))]
    assert _kernel(cpu) == {"fused": True}
    assert _kernel(meta) == {"foreach": True}
    assert _kernel([{"params": cpu}]) == {"fused": True}


def test_checkpoint_of_a_foreach_optimiser_loads_into_the_fused_one():
    """Runs checkpointed before the switch to fused kernels resume without error."""
    torch.manual_seed(0)
    net = torch.nn.Linear(4, 2)
    old = torch.optim.Adam(net.parameters(), lr=1e-3, foreach=True)
    net(torch.randn(8, 4)).sum().backward()
    old.step()
    new = build_optimizer(net.parameters(), OptimConfig(name="adam"))
    new.load_state_dict(old.state_dict())
    net(torch.randn(8, 4)).sum().backward()
    new.step()
    assert all(torch.isfinite(p).all() for p in net.parameters())


@pytest.mark.parametrize("lshape,xshape", [
    ((5000, 3, 784), (3, 784)),  # IS evaluation: k samples x B images
    ((1, 2000, 784), (2000, 784)),  # validation ELBO: k = 1
    ((3000, 784), (3000, 784)),
    ((2, 3, 100000), (3, 100000)),  # one row bigger than a block
    ((700, 2, 784), (700, 2, 784)),
])
def test_blocked_bernoulli_log_prob_equals_the_expression(lshape, xshape):
    """The cache-blocked path (large CPU tensors, no autograd) computes the same
    sum(x*l - softplus(l)); grey x too, where the expression is a cross-entropy."""
    g = torch.Generator().manual_seed(0)
    logits = 4 * torch.randn(lshape, generator=g)
    x = torch.rand(xshape, generator=g)
    lik = BernoulliLikelihood()
    with torch.no_grad():
        assert lik_module._blockable(logits, x)
        fast = lik.log_prob(logits, x)
    ref = (x.double() * logits.double() - F.softplus(logits.double())).sum(-1)
    assert fast.shape == ref.shape and fast.dtype == torch.float32
    # float32 sums over up to 100000 terms of size ~3: ~1e-3 absolute at most.
    torch.testing.assert_close(fast.double(), ref, rtol=2e-6, atol=1e-3)


@pytest.mark.parametrize("lshape,xshape", [
    ((50, 100, 784), (100, 784)),  # the IWAE's k = 50 samples x a batch of 100
    ((2, 3, 100000), (3, 100000)),  # one row bigger than a block
])
def test_blocked_path_under_autograd_is_autograds_bit_for_bit(lshape, xshape):
    """Large tensors under autograd (the IWAE's k*B rows) go through _BlockedBernoulli:
    autograd's kernels on cache-sized blocks, so the same log-likelihood and the same
    gradient to the last bit where each block is a whole number of vectors (both shapes
    here; MNIST with a batch that is a multiple of 4)."""
    g = torch.Generator().manual_seed(0)
    base = 4 * torch.randn(lshape, generator=g)
    x = torch.bernoulli(torch.rand(xshape, generator=g), generator=g)
    upstream = torch.randn(lshape[:-1], generator=g)
    lik = BernoulliLikelihood()
    fast_l = base.clone().requires_grad_()
    assert lik_module._blockable(fast_l, x)
    fast = lik.log_prob(fast_l, x)
    assert fast.grad_fn is not None and "Blocked" in type(fast.grad_fn).__name__
    fast.backward(upstream)
    plain_l = base.clone().requires_grad_()
    plain = (x * plain_l - F.softplus(plain_l)).sum(-1)
    plain.backward(upstream)
    assert torch.equal(fast, plain)
    assert torch.equal(fast_l.grad, plain_l.grad)
    # and the gradient is the closed form g * (x - sigmoid(l))
    torch.testing.assert_close(fast_l.grad, upstream.unsqueeze(-1) * (x - torch.sigmoid(base)),
                               rtol=1e-5, atol=1e-5)


def test_the_blocked_gradient_rounds_like_autograd_in_odd_shapes():
    """A block that is not a whole number of vectors ends in torch's scalar loop, which may
    round softplus otherwise in the last bit: float rounding apart, never more."""
    g = torch.Generator().manual_seed(1)
    base = 4 * torch.randn(7, 1001, 75, generator=g)
    x = torch.bernoulli(torch.rand(1001, 75, generator=g), generator=g)
    fast_l, plain_l = base.clone().requires_grad_(), base.clone().requires_grad_()
    assert lik_module._blockable(fast_l, x)
    BernoulliLikelihood().log_prob(fast_l, x).sum().backward()
    (x * plain_l - F.softplus(plain_l)).sum(-1).sum().backward()
    torch.testing.assert_close(fast_l.grad, plain_l.grad, rtol=1e-6, atol=1e-7)


def test_a_differentiable_target_takes_autograds_own_path():
    logits = torch.randn(200, 50, 784, requires_grad=True)
    x = torch.bernoulli(torch.rand(50, 784)).requires_grad_()
    assert not lik_module._blockable(logits, x)
    BernoulliLikelihood().log_prob(logits, x).sum().backward()
    torch.testing.assert_close(logits.grad, (x - torch.sigmoid(logits)).expand_as(logits))
    torch.testing.assert_close(x.grad, logits.detach().sum(0))


def test_is_evaluation_is_unchanged_by_the_blocked_likelihood(monkeypatch):
    """evaluate_model with and without the blocked path: the same samples (the RNG stream
    is untouched) and the same numbers to float rounding."""
    torch.manual_seed(0)
    model = build_model(ModelConfig(hidden=(64,), latent=5), DataInfo((1, 28, 28), True))
    x = torch.bernoulli(torch.rand(5, 784, generator=torch.Generator().manual_seed(2)))
    fast = evaluate_model(model, x, None, k=2000, progress=False)
    monkeypatch.setattr(lik_module, "_BLOCK", 1 << 40)  # never blockable: the plain expression
    plain = evaluate_model(model, x, None, k=2000, progress=False)
    for key in ("log_likelihood", "elbo", "recon", "kl"):
        assert getattr(fast, key) == pytest.approx(getattr(plain, key), rel=1e-6, abs=1e-4), key
