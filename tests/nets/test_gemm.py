"""The nets' products through either GEMM library (nets/gemm.py).

Each library's float32 product is checked against float64 with the dot product's
rounding bound: |fl(x . w) - x . w| <= gamma_K sum_i |x_i w_i|, gamma_K = K u / (1 - K u),
u = 2^-24 (Higham, Accuracy and Stability of Numerical Algorithms, eq. 3.5), plus one
rounding of the bias's addition; likewise each gradient.  Where a library is missing from
this torch build its cases are skipped.  The written-out backward must equal autograd's
bit for bit under either library.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn

from vaelab.config import ModelConfig, ObjectiveConfig
from vaelab.errors import ConfigError
from vaelab.models import DataInfo, build_model
from vaelab.nets import gemm
from vaelab.objectives import build_objective

U = 2.0 ** -24
HAS_ONEDNN = gemm._onednn_op() is not None
LIBRARIES = ["torch", pytest.param("onednn", marks=pytest.mark.skipif(not HAS_ONEDNN, reason="no oneDNN"))]


@pytest.fixture(params=LIBRARIES)
def library(request, monkeypatch):
    monkeypatch.setenv(gemm.ENV, request.param)
    assert gemm.gemm_backend() == request.param
    return request.param


def _bound(a, b, k):
    """gamma_K |a| |b| for the product a @ b of float64 tensors, K terms per dot product."""
    gamma = k * U / (1 - k * U)
    return gamma * (a.abs() @ b.abs())


def _data(m=300, k=700, n=90, lead=()):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(*lead, m, k, generator=g)
    w = torch.randn(n, k, generator=g) / k ** 0.5
    b = torch.randn(n, generator=g)
    return x, w, b


def test_the_product_is_float32_accurate(library):
    x, w, b = _data()
    y = gemm.linear(x, w, b).double()
    exact = x.double() @ w.double().T + b.double()
    bound = _bound(x.double(), w.double().T, x.shape[-1]) + U * exact.abs() + U * b.double().abs()
    assert ((y - exact).abs() <= bound).all()
    # ... and a long product is rounded, not exact (the bound is not vacuous)
    assert (y - exact).abs().max() > 0


def test_the_gradients_are_float32_accurate(library):
    x, w, b = _data(lead=(3,))
    x.requires_grad_()
    w.requires_grad_()
    b.requires_grad_()
    g = torch.randn(3, 300, 90, generator=torch.Generator().manual_seed(1))
    gemm.linear(x, w, b).backward(g)
    gd = g.double()
    gx = gd @ w.detach().double()
    assert ((x.grad.double() - gx).abs() <= _bound(gd, w.detach().double(), 90) + U * gx.abs()).all()
    g2, x2 = gd.reshape(-1, 90), x.detach().double().reshape(-1, 700)
    gw = g2.T @ x2
    assert ((w.grad.double() - gw).abs() <= _bound(g2.T, x2, 900) + U * gw.abs()).all()
    gb = g2.sum(0)
    assert ((b.grad.double() - gb).abs() <= _bound(g2.T, torch.ones(900, 1, dtype=torch.float64), 900)[:, 0]).all()


def test_leading_dims_are_rows(library):
    x, w, b = _data(m=40, lead=(5,))
    assert torch.equal(gemm.linear(x, w, b), gemm.linear(x.reshape(200, -1), w, b).reshape(5, 40, -1))


def test_mm_writes_into_out(library):
    a, b = torch.randn(30, 700), torch.randn(700, 20)
    out = torch.empty(30, 20)
    r = gemm.mm(a, b, out=out)
    assert r is out and torch.equal(out, gemm.mm(a, b))
    assert torch.allclose(out.double(), a.double() @ b.double(), rtol=0, atol=float(_bound(a.double(), b.double(), 700).max()))


def test_linear_is_nn_linear_with_the_same_state():
    layer = gemm.Linear(7, 3)
    assert isinstance(layer, nn.Linear)
    plain = nn.Linear(7, 3)
    plain.load_state_dict(layer.state_dict())
    x = torch.randn(4, 7)
    assert torch.allclose(layer(x), plain(x), atol=1e-6)


@pytest.mark.skipif(not HAS_ONEDNN, reason="no oneDNN")
def test_what_onednn_does_not_take_is_torch_s_own(monkeypatch):
    monkeypatch.setenv(gemm.ENV, "onednn")
    x, w, b = _data()
    xd, wd, bd = x.double(), w.double(), b.double()
    assert torch.equal(gemm.linear(xd, wd, bd), torch.nn.functional.linear(xd, wd, bd))  # float64
    with torch.autocast("cpu", dtype=torch.bfloat16):  # train.precision's autocast
        assert gemm.linear(x, w, b).dtype == torch.bfloat16


@pytest.mark.skipif(not HAS_ONEDNN, reason="no oneDNN")
def test_onednn_is_called(monkeypatch):
    # a long product's rounding differs between the libraries: oneDNN really computes it
    x, w, b = _data(m=64, k=2000, n=64)
    monkeypatch.setenv(gemm.ENV, "onednn")
    assert torch.equal(gemm.linear(x, w, b), gemm._dnn(x, w, b))


def test_the_choice(monkeypatch):
    monkeypatch.setenv(gemm.ENV, "blas")
    with pytest.raises(ConfigError, match="VAELAB_GEMM='blas' is not a GEMM library; use one of auto, torch, onednn"):
        gemm.gemm_backend()
    monkeypatch.setenv(gemm.ENV, "torch")
    assert gemm.gemm_backend() == "torch"
    # auto: oneDNN only on an AMD CPU with AVX-512 (where MKL runs its AVX2 code)
    monkeypatch.setenv(gemm.ENV, "auto")
    for vendor, capability, expect in [("AuthenticAMD", "AVX512", "onednn" if HAS_ONEDNN else "torch"),
                                       ("AuthenticAMD", "AVX2", "torch"), ("GenuineIntel", "AVX512", "torch")]:
        gemm._resolve.cache_clear()
        monkeypatch.setattr(gemm, "_cpu_vendor", lambda v=vendor: v)
        monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda c=capability: c)
        assert gemm.gemm_backend() == expect, (vendor, capability)
    gemm._resolve.cache_clear()


def test_onednn_missing_is_one_line(monkeypatch):
    monkeypatch.setenv(gemm.ENV, "onednn")
    monkeypatch.setattr(gemm, "_onednn_op", lambda: None)
    gemm._resolve.cache_clear()
    try:
        with pytest.raises(ConfigError, match="no oneDNN linear; use VAELAB_GEMM=torch"):
            gemm.gemm_backend()
    finally:
        monkeypatch.undo()
        gemm._resolve.cache_clear()


def test_the_closed_step_is_autograd_s_under_each_library(library):
    # 784-500-20 ReLU at batch 100 (dot products of 784 and 500 terms, rounded differently by
    # the two libraries): the written-out backward still equals autograd's bit for bit
    model = build_model(ModelConfig(latent=20, hidden=(500,), activation="relu"), DataInfo((1, 28, 28), True))
    x = (torch.rand(100, 784, generator=torch.Generator().manual_seed(4)) > 0.8).float()
    objective = build_objective(ObjectiveConfig(kl="analytic"))
    torch.manual_seed(1)
    (-objective(model, x)["objective"].mean()).backward()
    autograd = [p.grad.clone() for p in model.parameters()]
    model.zero_grad(set_to_none=True)
    torch.manual_seed(1)
    objective.closed_step(model)(x, None, 1.0)
    assert all(torch.equal(a, p.grad) for a, p in zip(autograd, model.parameters()))


@pytest.mark.skipif(not HAS_ONEDNN, reason="no oneDNN")
def test_a_second_derivative_is_refused(monkeypatch):
    monkeypatch.setenv(gemm.ENV, "onednn")
    x = torch.randn(4, 3, requires_grad=True)
    w = torch.randn(2, 3, requires_grad=True)
    (gx,) = torch.autograd.grad(gemm.linear(x, w).pow(2).sum(), x, create_graph=True)
    with pytest.raises(RuntimeError, match="once_differentiable|does not require grad"):
        gx.sum().backward()


@pytest.mark.skipif(not HAS_ONEDNN, reason="no oneDNN")
def test_a_fused_activation_is_the_activation_of_the_product(monkeypatch):
    monkeypatch.setenv(gemm.ENV, "onednn")
    x, w, b = _data()
    y = gemm.linear(x, w, b)
    # ReLU is exact: fused or not, the same bits
    assert torch.equal(gemm.linear_act(x, w, b, "relu"), torch.relu(y))
    # tanh: oneDNN's own, within 2 ulp of torch's (each within 1.2 ulp of the exact tanh of y)
    t = gemm.linear_act(x, w, b, "tanh")
    ulp = torch.nextafter(torch.tanh(y).abs(), torch.tensor(2.0)) - torch.tanh(y).abs()
    assert ((t - torch.tanh(y)).abs() <= 2 * ulp).all()
    # its gradients: autograd's through torch's tanh, within float32 rounding
    xs, ws, bs = (v.clone().requires_grad_() for v in (x, w, b))
    g = torch.randn_like(y)
    gemm.linear_act(xs, ws, bs, "tanh").backward(g)
    xr, wr, br = (v.double().requires_grad_() for v in (x, w, b))
    torch.tanh(torch.nn.functional.linear(xr, wr, br)).backward(g.double())
    for got, ref in ((xs.grad, xr.grad), (ws.grad, wr.grad), (bs.grad, br.grad)):
        assert torch.allclose(got.double(), ref, rtol=1e-4, atol=1e-4 * float(ref.abs().max()))


@pytest.mark.skipif(not HAS_ONEDNN, reason="no oneDNN")
def test_an_mlp_fuses_its_activations_unless_a_hook_watches(monkeypatch):
    from vaelab.nets import MLP

    monkeypatch.setenv(gemm.ENV, "onednn")
    torch.manual_seed(0)
    net = MLP(30, (40, 20), 5, "tanh")
    x = torch.randn(8, 30)
    calls = []
    real = gemm.linear_act
    monkeypatch.setattr(gemm, "linear_act", lambda *a: calls.append(a[-1]) or real(*a))
    fused = net(x)
    assert calls == ["tanh", "tanh"]
    seen = []
    net.net[1].register_forward_hook(lambda m, i, o: seen.append(o))
    plain = net(x)  # module by module, so the hook sees the activation
    assert len(seen) == 1 and calls == ["tanh", "tanh"]
    assert torch.allclose(fused, plain, atol=1e-5)
    # an activation oneDNN does not apply (softplus) runs module by module
    calls.clear()
    MLP(30, (40,), 5, "softplus")(x)
    assert calls == []
