"""Importance-sampled log p(x) (Burda et al. 2015, sec. 5; Rezende et al. 2014, app. E).

    log p(x) ~= logsumexp_{i=1..k} log w_i - log k,   log w_i = log p(x, z_i) - log q(z_i | x)

with the model's own q as proposal.  Samples are drawn in chunks and combined with a
running logsumexp, so k = 5000 never materialises (5000, N, D) and never overflows.  The
mean of the same log w_i is a k-sample estimate of the ELBO, so both numbers come from
one pass and are always labelled apart.  By Jensen, E[IS estimate] <= log p(x) and
>= ELBO; it converges to log p(x) as k grows.
"""

from __future__ import annotations

import copy
import math
from dataclasses import asdict, dataclass

import torch
from tqdm.auto import tqdm

from ..allocator import release_free_memory, tune_malloc
from ..denormals import flushed

# Rows (images x samples) per decoder call.  Large enough that the GEMMs run at full
# speed, small enough that the (rows, D) activations stay well inside memory.
DEFAULT_ROWS_PER_CHUNK = 16384  # 2^14


@dataclass
class EvalResult:
    elbo: float  # mean over images of E_q[log w], nats per image (k-sample estimate)
    log_likelihood: float  # mean over images of the IS estimate of log p(x), nats
    k: int
    recon: float  # mean E_q[log p(x|z)]
    kl: float  # mean E_q[log q(z|x) - log p(z)] (Monte Carlo over the k samples)
    n: int  # images evaluated
    log_likelihood_sem: float  # standard error of the mean over images

    def to_dict(self) -> dict:
        return asdict(self)


@torch.no_grad()
def importance_sampled(model, x: torch.Tensor, y: torch.Tensor | None, k: int,
                       rows_per_chunk: int = DEFAULT_ROWS_PER_CHUNK) -> dict[str, torch.Tensor]:
    """Per-image IS log p(x), ELBO, recon and KL for one batch x (B, D).  -> {name: (B,)}."""
    b = x.shape[0]
    per_call = max(1, min(k, rows_per_chunk // max(b, 1)))
    lse = torch.full((b,), -math.inf, dtype=torch.float64, device=x.device)
    sum_w = torch.zeros(b, dtype=torch.float64, device=x.device)
    sum_px = torch.zeros_like(sum_w)
    sum_kl = torch.zeros_like(sum_w)
    done = 0
    while done < k:
        m = min(per_call, k - done)
        lw = model.log_weights(x, m, y)  # (m, B) terms
        log_w = lw.log_w.double()
        lse = torch.logaddexp(lse, torch.logsumexp(log_w, dim=0))
        sum_w += log_w.sum(0)
        sum_px += lw.log_px_z.double().sum(0)
        sum_kl += lw.kl.double().sum(0)
        done += m
    return {
        "log_likelihood": lse - math.log(k),
        "elbo": sum_w / k,
        "recon": sum_px / k,
        "kl": sum_kl / k,
    }


def inference_form(model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """The model for many rows without gradients: on the CPU, an eval-mode copy in which
    every net that offers a faster form of itself (``for_inference()``, e.g. the conv
    decoder: batch norm folded, its last transposed convolution as a GEMM) is replaced by
    it; the same function up to float rounding (BENCHMARKS.md, "CNN decoder").  The model
    itself where no net offers one, or off the CPU."""
    offers = [name for name, m in model.named_modules() if callable(getattr(m, "for_inference", None))]
    if device.type != "cpu" or not offers:
        return model
    fast = copy.deepcopy(model).eval()
    for name in offers:
        parent, _, leaf = name.rpartition(".")
        holder = fast.get_submodule(parent) if parent else fast
        setattr(holder, leaf, getattr(holder, leaf).for_inference())
    return fast


@torch.no_grad()
def evaluate_model(model, x: torch.Tensor, y: torch.Tensor | None, k: int = 5000,
                   batch_size: int = 0, seed: int = 1234, progress: bool = True,
                   rows_per_chunk: int = DEFAULT_ROWS_PER_CHUNK) -> EvalResult:
    """Mean test ELBO and IS log-likelihood over x (N, D), repeatable under ``seed``."""
    tune_malloc()  # a bounded heap for its chunks' tens-of-MB blocks (allocator.py)
    with flushed():  # denormals flushed in this thread for the evaluation (denormals.py)
        return _evaluate_model(model, x, y, k, batch_size, seed, progress, rows_per_chunk)


def _evaluate_model(model, x: torch.Tensor, y: torch.Tensor | None, k: int, batch_size: int, seed: int,
                    progress: bool, rows_per_chunk: int) -> EvalResult:
    was_training = model.training
    model.eval()
    net = inference_form(model, x.device)
    n = x.shape[0]
    if batch_size <= 0:
        batch_size = max(1, min(n, rows_per_chunk // k if k < rows_per_chunk else 1, 1000))
    totals: dict[str, list[torch.Tensor]] = {"log_likelihood": [], "elbo": [], "recon": [], "kl": []}
    devices = [x.device] if x.device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        bar = tqdm(total=n, desc=f"eval k={k}", unit="img", disable=not progress, leave=False)
        for start in range(0, n, batch_size):
            xb = x[start:start + batch_size]
            yb = None if y is None else y[start:start + batch_size]
            out = importance_sampled(net, xb, yb, k, rows_per_chunk)
            for name, v in out.items():
                totals[name].append(v.cpu())
            bar.update(xb.shape[0])
            release_free_memory()  # freed blocks do not pile up (allocator.py; at most once a second)
        bar.close()
    model.train(was_training)
    cat = {name: torch.cat(v) for name, v in totals.items()}
    ll = cat["log_likelihood"]
    sem = float(ll.std(unbiased=True) / math.sqrt(n)) if n > 1 else float("nan")
    return EvalResult(
        elbo=float(cat["elbo"].mean()), log_likelihood=float(ll.mean()), k=k,
        recon=float(cat["recon"].mean()), kl=float(cat["kl"].mean()), n=n, log_likelihood_sem=sem,
    )


@torch.no_grad()
def active_units(model, x: torch.Tensor, y: torch.Tensor | None = None, threshold: float = 0.01,
                 batch_size: int = 1000) -> int:
    """Burda et al. (2015), sec. 5.2: unit u is active if Cov_x(E_{q(u|x)}[u]) > threshold."""
    means = torch.cat([
        model.latent_means(x[i:i + batch_size], None if y is None else y[i:i + batch_size])
        for i in range(0, x.shape[0], batch_size)
    ])  # (N, Z)
    if means.shape[0] < 2:  # one image has no spread: no unit can be counted active
        return 0
    return int((means.double().var(dim=0, unbiased=True) > threshold).sum())
