"""What each benchmark worker process runs.

Every workload lives in its own spawned process (see bench.py), so its peak memory is its
own and one workload's allocator or thread state cannot help or hurt another.  A workload
is built once (``setup``, untimed: data loading, model building, a few warm-up steps),
then timed repeatedly (``run``), alternating with the other workloads round by round.

vaelab is measured through its real entry points: ``Trainer._train_epoch`` (the hot loop,
no checkpoint or validation), ``Trainer.fit`` for one epoch (everything a user's epoch
costs), and ``evaluate_model`` (what ``vaelab eval`` calls).
"""

from __future__ import annotations

import dataclasses
import os
import resource
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from flops import count_flops, gemm_only, mlp_vae_step_flops
from gemm import products_by_library

# --- measurement helpers ------------------------------------------------------------


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class PeakMemory:
    """Peak resident memory of this process over a block, in MiB.

    Linux: writing "5" to /proc/self/clear_refs resets VmHWM (the RSS high-water mark) to
    the current RSS, so VmHWM read afterwards is the peak of this block alone.  Elsewhere
    it falls back to ru_maxrss, the peak of the whole process so far (labelled so).  On
    CUDA the device's peak allocation is recorded too.
    """

    def __init__(self, device: torch.device):
        self.device = device
        self.method = "VmHWM"
        self.rss_mib = float("nan")
        self.base_mib = float("nan")
        self.cuda_mib = float("nan")

    @staticmethod
    def _status(field: str) -> float:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024.0
        raise KeyError(field)

    def __enter__(self) -> "PeakMemory":
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
            self.base_mib = self._status("VmRSS")
        except OSError:
            self.method = "ru_maxrss (process peak)"
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        return self

    def __exit__(self, *exc) -> None:
        if self.method == "VmHWM":
            self.rss_mib = self._status("VmHWM")
        else:
            self.rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
        if self.device.type == "cuda":
            self.cuda_mib = torch.cuda.max_memory_allocated(self.device) / 2**20


def subset(ds, n: int | None):
    """The dataset with only its first n training images (all when n is None)."""
    if n is None or n >= ds.train.x.shape[0]:
        return ds
    return dataclasses.replace(ds, train=ds.train.head(n))


def top_ops(prof, n: int = 12) -> list[dict[str, Any]]:
    """The profile's top ops by self time, as rows."""
    rows = []
    for ev in sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)[:n]:
        rows.append({"op": ev.key, "self_ms": ev.self_cpu_time_total / 1e3, "calls": ev.count})
    total = sum(e.self_cpu_time_total for e in prof.key_averages()) / 1e3
    for r in rows:
        r["share"] = r["self_ms"] / total if total else float("nan")
    return rows


# --- workloads ----------------------------------------------------------------------


class Workload:
    """Base: ``setup`` once, then ``run(rep)`` -> {"seconds", "images", "flops", ...}."""

    images: int = 0
    flops: float = float("nan")

    def __init__(self, opts: dict[str, Any]):
        self.opts = opts
        self.device = torch.device(opts["device"])

    def setup(self) -> dict[str, Any]:
        return {}

    def body(self, rep: int) -> dict[str, Any]:
        raise NotImplementedError

    def run(self, rep: int) -> dict[str, Any]:
        sync(self.device)
        with PeakMemory(self.device) as mem:
            t0 = time.perf_counter()
            extra = self.body(rep) or {}
            sync(self.device)
            seconds = time.perf_counter() - t0
        return {"seconds": seconds, "images": self.images, "flops": self.flops, "rss_mib": mem.rss_mib,
                "base_mib": mem.base_mib, "mem_method": mem.method, "cuda_mib": mem.cuda_mib,
                "load": os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan"), **extra}

    def profile(self) -> list[dict[str, Any]]:
        return []


class GemmCeiling(Workload):
    """float32 n x n @ n x n, the best of ``reps`` products through each GEMM library this
    torch has (torch's own, MKL on x86; oneDNN on the CPU): what the hardware can do here."""

    def setup(self):
        n = self.opts.get("gemm_n") or (8192 if self.device.type == "cuda" else 2048)
        self.n = n
        g = torch.Generator(device="cpu").manual_seed(0)
        self.a = torch.randn(n, n, generator=g).to(self.device)
        self.b = torch.randn(n, n, generator=g).to(self.device)
        self.products = products_by_library(self.a, self.b)
        for product in self.products.values():
            for _ in range(3):
                product()
        sync(self.device)
        self.flops = 2.0 * n ** 3
        return {"n": n, "libraries": list(self.products)}

    def run(self, rep: int) -> dict[str, Any]:
        best, library = float("inf"), ""
        for name, product in self.products.items():
            for _ in range(self.opts.get("gemm_reps", 8)):
                sync(self.device)
                t0 = time.perf_counter()
                product()
                sync(self.device)
                seconds = time.perf_counter() - t0
                if seconds < best:
                    best, library = seconds, name
        return {"seconds": best, "images": 0, "flops": self.flops, "rss_mib": float("nan"),
                "base_mib": float("nan"), "mem_method": "", "cuda_mib": float("nan"),
                "load": os.getloadavg()[0], "library": library}


def _load_data(opts):
    from vaelab.config import DataConfig
    from vaelab.data import load_dataset

    return load_dataset(DataConfig(), opts.get("data"))


class VaelabTrain(Workload):
    """vaelab's hot loop, ``Trainer._train_epoch``, on the first ``images`` training images."""

    preset = "vae"

    def config(self):
        from vaelab.config import load_config

        # The thread count this worker was given (bench.py): a run's own measured choice
        # (train.threads 0) would otherwise replace it.
        return load_config(preset=self.preset, overrides={"train.device": self.opts["device"],
                                                          "train.threads": torch.get_num_threads()})

    def setup(self):
        from vaelab.training import Trainer

        self.cfg = self.config()
        ds = subset(_load_data(self.opts), self.opts["images"].get(self.name.split("-")[0]))
        self.images = int(ds.train.x.shape[0])
        self.tmp = tempfile.mkdtemp(prefix="vaelab-bench-")
        self.trainer = Trainer.open(self.cfg, Path(self.tmp) / "run", progress=False).build(dataset=ds)
        tr = self.trainer
        bs = self.cfg.train.batch_size
        # FLOPs of one step, counted on the real model by hooks (flops.py), then warm-up.
        x = tr.train_x[:bs].bernoulli() if tr.ds.dynamic else tr.train_x[:bs]
        with count_flops(tr.model) as c:
            loss = -tr.objective(tr.model, x)["objective"].mean()
            loss.backward()
        tr.opt.zero_grad(set_to_none=True)
        steps = -(-self.images // bs)
        self.step_flops = c.total
        self.flops = float(c.total * steps)  # the last partial batch is counted as full (n divisible here)
        for _ in range(3):
            loss = -tr.objective(tr.model, x)["objective"].mean()
            tr.opt.zero_grad(set_to_none=True)
            loss.backward()
            tr.opt.step()
        info = {"step_flops": c.total, "step_forward": c.forward, "step_backward": c.backward,
                "layers": [(n, f, b) for n, f, b in c.layers], "steps": steps, "images": self.images,
                "params": sum(p.numel() for p in tr.model.parameters()), "threads": torch.get_num_threads(),
                "optimizer": type(tr.opt).__name__, "fused": bool(tr.opt.defaults.get("fused"))}
        self.steps = steps
        self._gemms = None
        if self.preset == "vae":
            info["formula"] = mlp_vae_step_flops(bs)
            self._gemms = gemm_only(c.linear_shapes, self.device)
            self._gemms()
        return info

    def run(self, rep):
        out = super().run(rep)
        if self._gemms is not None:  # measured between timed epochs, never during setup
            out.update(self._floors())
        return out

    def _floors(self) -> dict[str, float]:
        """What bounds an epoch from below, measured in the same round: the step's GEMMs
        alone (same shapes, random operands) and the epoch's dynamic binarisation (one
        torch.bernoulli over the training set, a serial kernel)."""
        from vaelab.data import binarize_dynamic

        sync(self.device)
        t0 = time.perf_counter()
        for _ in range(20):
            self._gemms()
        sync(self.device)
        gemm_step = (time.perf_counter() - t0) / 20
        t0 = time.perf_counter()
        binarize_dynamic(self.trainer.train_x)
        sync(self.device)
        return {"gemm_only_epoch_s": gemm_step * self.steps, "binarize_epoch_s": time.perf_counter() - t0}

    def body(self, rep):
        stats = self.trainer._train_epoch(rep)
        return {"train_elbo": stats["train_elbo"]}

    def profile(self):
        from torch.profiler import ProfilerActivity, profile

        tr = self.trainer
        bs = self.cfg.train.batch_size
        steps = min(50, self.images // bs)
        x_all = tr.train_x[:steps * bs].bernoulli()
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            for s in range(steps):
                x = x_all[s * bs:(s + 1) * bs]
                loss = -tr.objective(tr.model, x)["objective"].mean()
                tr.opt.zero_grad(set_to_none=True)
                loss.backward()
                tr.opt.step()
        return top_ops(prof)


class VaelabIWAE(VaelabTrain):
    preset = "iwae"


class VaelabCNN(VaelabTrain):
    preset = "vae-cnn"


class Compiled:
    """Mixin: the same workload with ``train.compile`` on.  Compiling happens in
    setup (one step, untimed; its seconds are reported), so the timed epochs are what every
    later epoch of a run costs."""

    def config(self):
        return super().config().replace(**{"train.compile": True})

    def setup(self):
        info = super().setup()
        tr = self.trainer
        x = tr.train_x[:self.cfg.train.batch_size].bernoulli() if tr.ds.dynamic else tr.train_x[:100]
        t0 = time.perf_counter()
        for _ in range(2):  # the first call compiles; the second checks it does not recompile
            loss, _ = tr._compiled_step(x, None)
            tr.opt.zero_grad(set_to_none=True)
            loss.backward()
            tr.opt.step()
        info["compile_s"] = time.perf_counter() - t0
        info["compiled"] = tr._compiled is not None
        self._gemms = None  # the floors are the eager workload's
        return info


class VaelabCompiled(Compiled, VaelabTrain):
    preset = "vae"


class VaelabIWAECompiled(Compiled, VaelabTrain):
    preset = "iwae"


class VaelabCNNCompiled(Compiled, VaelabTrain):
    preset = "vae-cnn"


class VaelabFit(VaelabTrain):
    """One whole epoch as a user gets it: ``Trainer.fit`` with validation, checkpoint and
    metrics written.  A fresh run directory every repetition (its creation is not timed)."""

    def setup(self):
        from vaelab.training import Trainer

        self.cfg = self.config().replace(**{"train.epochs": 1})
        self.ds = subset(_load_data(self.opts), self.opts["images"].get(self.name))
        self.images = int(self.ds.train.x.shape[0])
        self.tmp = tempfile.mkdtemp(prefix="vaelab-bench-")
        self._Trainer = Trainer
        warm = Trainer.open(self.cfg, Path(self.tmp) / "warm", progress=False).build(dataset=self.ds)
        x = warm.train_x[:100].bernoulli()
        for _ in range(3):  # warm-up: allocator, BLAS handles
            loss = -warm.objective(warm.model, x)["objective"].mean()
            warm.opt.zero_grad(set_to_none=True)
            loss.backward()
            warm.opt.step()
        self.flops = float("nan")
        return {"images": self.images, "valid_images": int(self.ds.valid.x.shape[0])}

    def run(self, rep):
        self.trainer = self._Trainer.open(self.cfg, Path(self.tmp) / f"run{rep}", progress=False).build(dataset=self.ds)
        return Workload.run(self, rep)

    def body(self, rep):
        state = self.trainer.fit()
        return {"train_elbo": state.metrics[-1]["train_elbo"]}


class PlainLoop(Workload):
    """benchmarks/plain_loop.py: DataLoader + per-batch Bernoulli + plain optimiser step."""

    def setup(self):
        import plain_loop

        ds = subset(_load_data(self.opts), self.opts["images"].get(self.name))
        self.images = int(ds.train.x.shape[0])
        self.model, self.loader, self.opt = plain_loop.build(ds.train.x, self.device)
        self._epoch = plain_loop.train_epoch
        data = torch.bernoulli(ds.train.x[:100]).to(self.device)
        with count_flops(self.model) as c:
            recon, mu, logvar = self.model(data)
            plain_loop.loss_function(recon, data, mu, logvar).backward()
        self.opt.zero_grad()
        self.flops = float(c.total * (self.images // 100))
        return {"step_flops": c.total, "images": self.images}

    def body(self, rep):
        return {"train_elbo": -self._epoch(self.model, self.loader, self.opt, self.device)}


class ISEval(Workload):
    """``evaluate_model`` (what ``vaelab eval`` runs): importance-sampled log p(x), k=5000,
    on the first ``images`` test images, with the ``vae`` preset's MLP VAE.  The cost does
    not depend on the weights, so the model is freshly initialised."""

    preset = "vae"

    def setup(self):
        from vaelab.config import load_config
        from vaelab.models import build_model

        self.cfg = load_config(preset=self.preset)
        ds = _load_data(self.opts)
        images = self.opts["images"]
        n = images.get(self.name, images.get(self.name.split("-")[0])) or ds.test.x.shape[0]
        self.x = ds.test.x[:n].to(self.device)
        self.images = int(self.x.shape[0])
        self.k = self.opts.get("k", 5000)
        torch.manual_seed(0)
        self.model = build_model(self.cfg.model, ds.info).to(self.device)
        # FLOPs counted by hooks on the exact call pattern, for the first batch of images,
        # then scaled (every batch has the same shape except possibly the last).
        from vaelab.evaluation.likelihood import evaluate_model

        self._eval = evaluate_model
        one = self._batch_images()
        with count_flops(self.model) as c:
            self._eval(self.model, self.x[:one], None, k=self.k, batch_size=self.cfg.eval.batch_size,
                       seed=self.cfg.eval.seed, progress=False)
        self.flops = float(c.total) * self.images / one
        return {"k": self.k, "images": self.images, "batch_flops": c.total, "batch_images": one,
                "decoder_rows_per_image": self.k, "threads": torch.get_num_threads()}

    def _batch_images(self) -> int:
        from vaelab.evaluation.likelihood import DEFAULT_ROWS_PER_CHUNK

        bs = self.cfg.eval.batch_size
        if bs <= 0:  # evaluate_model's own choice
            rows = DEFAULT_ROWS_PER_CHUNK
            bs = max(1, min(self.images, rows // self.k if self.k < rows else 1, 1000))
        return min(bs, self.images)

    def body(self, rep):
        res = self._eval(self.model, self.x, None, k=self.k, batch_size=self.cfg.eval.batch_size,
                         seed=self.cfg.eval.seed, progress=False)
        return {"log_likelihood": res.log_likelihood}

    def profile(self):
        from torch.profiler import ProfilerActivity, profile

        n = min(self.images, 4)
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            self._eval(self.model, self.x[:n], None, k=self.k, batch_size=self.cfg.eval.batch_size,
                       seed=self.cfg.eval.seed, progress=False)
        return top_ops(prof)


class ISEvalCNN(ISEval):
    """The IS evaluation of the CNN VAE (conv decoder on k rows per image)."""

    preset = "vae-cnn"


class ISEvalIWAE(ISEval):
    """The IS evaluation of the two-stochastic-layer model (``iwae`` preset)."""

    preset = "iwae"


class VaelabForeach(VaelabTrain):
    """Ablation: the MLP VAE with the optimiser vaelab used before (foreach
    kernels instead of fused), to show what the fused kernel buys."""

    def setup(self):
        from vaelab.training import optim

        optim._kernel = lambda params, devices=(): {"foreach": True}  # whatever the optimiser
        info = super().setup()
        assert not info["fused"]
        return info


class ISEvalUnblocked(ISEval):
    """Ablation: the IS evaluation with the Bernoulli log-likelihood evaluated whole, as
    before, instead of in cache-sized blocks.  Same samples, same numbers."""

    def setup(self):
        from vaelab.distributions import likelihoods

        likelihoods._BLOCK = 1 << 40  # never blockable
        return super().setup()


WORKLOADS = {
    "gemm": GemmCeiling,
    "vaelab": VaelabTrain,
    "plain": PlainLoop,
    "fit": VaelabFit,
    "iwae": VaelabIWAE,
    "cnn": VaelabCNN,
    "is": ISEval,
    "vaelab-compiled": VaelabCompiled,
    "iwae-compiled": VaelabIWAECompiled,
    "cnn-compiled": VaelabCNNCompiled,
    "is-cnn": ISEvalCNN,
    "is-iwae": ISEvalIWAE,
    "vaelab-foreach": VaelabForeach,
    "is-unblocked": ISEvalUnblocked,
}


def worker(name: str, opts: dict[str, Any], conn) -> None:
    """Process body: build the workload, then serve ("run", rep) / ("profile",) / ("stop",)."""
    try:
        # "vaelab@1": the vaelab workload on 1 thread; "vaelab@1+": a second one (the pair)
        base, _, threads = name.partition("@")
        threads = int(threads.rstrip("+")) if threads else opts.get("threads")
        if threads:
            torch.set_num_threads(threads)
        wl = WORKLOADS[base](opts)
        wl.name = base
        info = wl.setup()
        conn.send(("ready", info))
    except Exception as err:  # report, do not hang the parent
        import traceback

        conn.send(("error", f"{type(err).__name__}: {err}\n{traceback.format_exc(limit=3)}"))
        return
    while True:
        msg = conn.recv()
        try:
            if msg[0] == "run":
                conn.send(("ok", wl.run(msg[1])))
            elif msg[0] == "profile":
                conn.send(("ok", wl.profile()))
            else:
                conn.send(("ok", None))
                return
        except Exception as err:
            import traceback

            conn.send(("error", f"{type(err).__name__}: {err}\n{traceback.format_exc(limit=3)}"))
