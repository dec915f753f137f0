"""Each speed lever of BENCHMARKS.md ("Levers") against the code without it, in one
process, the two arms alternating round by round (paired ratios, medians).

    python benchmarks/levers.py cnn-eval      # the conv decoder's inference form, IS k=5000
    python benchmarks/levers.py fast-step     # FastStep against torch.optim's step (Adam)
    python benchmarks/levers.py cnn-valid     # the same for the per-epoch validation ELBO
    python benchmarks/levers.py gather        # an epoch's batches gathered per batch / by one copy
    python benchmarks/levers.py binarize      # dynamic binarisation into a kept buffer / a new tensor
    python benchmarks/levers.py mlp-buffer    # a kept output buffer for the MLP decoder (not adopted)
    python benchmarks/levers.py iwae-likelihood  # the Bernoulli likelihood and its gradient in blocks (IWAE k=50)
    python benchmarks/levers.py all --rounds 5 --threads 1

The "without" arm rebuilds what the code did before the lever, so both arms compute the
same numbers (each lever's test checks that); what differs is the time.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from typing import Callable

import torch

Arm = Callable[[], None]


def cnn_eval(images: int) -> tuple[Arm, Arm]:
    """IS log-likelihood, k = 5000, of a (randomly initialised) CNN VAE on ``images``
    binary images: the inference form of the decoder against the model itself in
    channels-last layout (what the evaluation ran before)."""
    from vaelab.config import ModelConfig
    from vaelab.evaluation import likelihood as lik
    from vaelab.models import DataInfo, build_model

    torch.manual_seed(0)
    model = build_model(ModelConfig(arch="conv", latent=20), DataInfo((1, 28, 28), True))
    with torch.no_grad():  # batch-norm statistics that are not (0, 1)
        model.train().log_weights((torch.rand(500, 784) > 0.5).float(), 1)
    x = (torch.rand(images, 784) > 0.7).float()
    form = lik.inference_form

    def new():
        lik.evaluate_model(model, x, None, k=5000, progress=False)

    def old():
        model.to(memory_format=torch.channels_last)
        lik.inference_form = lambda m, device: m
        try:
            lik.evaluate_model(model, x, None, k=5000, progress=False)
        finally:
            lik.inference_form = form
            model.to(memory_format=torch.contiguous_format)

    return new, old


def _trainer(images: int, preset: str = "vae-tuned", overrides: dict | None = None, valid: int = 1000):
    """A Trainer for ``preset`` on ``images`` random binary 28 x 28 training images (and
    ``valid`` validation images), one epoch, this process's threads."""
    import tempfile
    from pathlib import Path

    from vaelab.config import load_config
    from vaelab.data import Dataset, Split
    from vaelab.training import Trainer

    g = torch.Generator().manual_seed(0)

    def split(n):
        return Split((torch.rand(n, 784, generator=g) > 0.7).float(), torch.zeros(n, dtype=torch.long))

    ds = Dataset(name="mnist", train=split(images), valid=split(valid), test=split(100), image_shape=(1, 28, 28),
                 binary=True, num_classes=10, dynamic=False)
    cfg = load_config(preset=preset, overrides={"train.threads": torch.get_num_threads(), "train.epochs": 1,
                                                **(overrides or {})})
    return Trainer.open(cfg, Path(tempfile.mkdtemp()) / "run", progress=False).build(dataset=ds)


def fast_step(images: int) -> tuple[Arm, Arm]:
    """One epoch of the MLP VAE (``Trainer._train_epoch``) with FastStep, and with
    torch.optim's own ``step`` in its place."""
    tr = _trainer(images)
    fast = tr._opt_step

    def new():
        tr._opt_step = fast
        tr._train_epoch(1)

    def old():
        tr._opt_step = tr.opt.step
        tr._train_epoch(1)

    return new, old


def gather(images: int) -> tuple[Arm, Arm]:
    """The rows of an epoch's batches: gathered batch by batch by the permutation, against
    one shuffled copy of the whole training set sliced (the trainer's way before)."""
    x = (torch.rand(images, 784) > 0.7).float()
    bs = 100

    def new():
        perm = torch.randperm(images)
        for s in range(0, images, bs):
            x.index_select(0, perm[s:s + bs]).sum()

    def old():
        perm = torch.randperm(images)
        shuffled = x[perm]
        for s in range(0, images, bs):
            shuffled[s:s + bs].sum()

    return new, old


def binarize(images: int) -> tuple[Arm, Arm]:
    """An epoch's dynamic binarisation of the grey training set: drawn into a buffer kept
    for the run, against a fresh tensor each epoch (the same draws)."""
    from vaelab.data import binarize_dynamic

    grey = torch.rand(images, 784) * (torch.rand(images, 784) > 0.8)  # MNIST-like: mostly 0
    buf = torch.empty_like(grey)

    def new():
        binarize_dynamic(grey, out=buf)

    def old():
        binarize_dynamic(grey)

    return new, old


def cnn_valid(images: int) -> tuple[Arm, Arm]:
    """The per-epoch validation ELBO of a CNN VAE (``Trainer._valid_elbo``) through the
    inference form of its decoder, against the model itself."""
    from vaelab.training import loop

    tr = _trainer(200, "vae-cnn", valid=images)
    form = loop.inference_form

    def new():
        tr._valid_elbo(0)

    def old():
        loop.inference_form = lambda m, device: m
        try:
            tr._valid_elbo(0)
        finally:
            loop.inference_form = form

    return new, old


def mlp_buffer(images: int) -> tuple[Arm, Arm]:
    """IS log-likelihood, k = 5000, of the MLP VAE: its decoder writing the 15,000 x 784
    logits of each chunk into one kept buffer (the same numbers) against a fresh tensor
    per chunk.  Measured and not adopted (BENCHMARKS.md)."""
    from vaelab.config import ModelConfig
    from vaelab.evaluation import likelihood as lik
    from vaelab.models import DataInfo, build_model

    torch.manual_seed(0)
    model = build_model(ModelConfig(hidden=(500,), activation="relu", latent=20), DataInfo((1, 28, 28), True))
    x = (torch.rand(images, 784) > 0.7).float()
    last = model.decoder.net[-1]
    buf: list[torch.Tensor] = []
    plain = model.decoder.forward

    def kept(z, cond=None):
        h = model.decoder.net[:-1](z)
        if not buf or buf[0].shape[0] < h.shape[0]:
            buf[:] = [h.new_empty(h.shape[0], last.out_features)]
        return torch.addmm(last.bias, h, last.weight.t(), out=buf[0][:h.shape[0]])

    def new():
        model.decoder.forward = kept
        lik.evaluate_model(model, x, None, k=5000, progress=False)
        model.decoder.forward = plain

    def old():
        lik.evaluate_model(model, x, None, k=5000, progress=False)

    return new, old


def iwae_likelihood(images: int) -> tuple[Arm, Arm]:
    """One epoch of the IWAE (k = 50, ``Trainer._train_epoch``, random binary images) with
    the Bernoulli log-likelihood and its gradient computed block by block
    (``_BlockedBernoulli``), against autograd on the whole (50, 100, 784) expression.  The
    same numbers bit for bit (tests/training/test_fast_path.py)."""
    from vaelab.allocator import tune_malloc
    from vaelab.denormals import flush_denormals
    from vaelab.distributions import likelihoods

    tr = _trainer(images, "iwae", {"model.latent": 20})
    flush_denormals()  # as Trainer.fit runs (section 3: an IWAE's weights make denormals within epochs)
    tune_malloc("train")
    block = likelihoods._BLOCK

    def new():
        tr._train_epoch(1)

    def old():
        likelihoods._BLOCK = 1 << 40  # never blockable: autograd on the whole expression
        try:
            tr._train_epoch(1)
        finally:
            likelihoods._BLOCK = block

    return new, old


LEVERS = {"cnn-eval": (cnn_eval, 6), "cnn-valid": (cnn_valid, 10000), "fast-step": (fast_step, 20000),
          "gather": (gather, 50000), "binarize": (binarize, 50000), "mlp-buffer": (mlp_buffer, 9),
          "iwae-likelihood": (iwae_likelihood, 3000)}


def measure(name: str, rounds: int) -> None:
    build, images = LEVERS[name]
    new, old = build(images)
    new(), old()  # warm-up: allocator, kernels
    times: dict[str, list[float]] = {"with": [], "without": []}
    for r in range(rounds):
        for arm, f in (("with", new), ("without", old)) if r % 2 == 0 else (("without", old), ("with", new)):
            t0 = time.perf_counter()
            f()
            times[arm].append(time.perf_counter() - t0)
    ratios = [b / a for a, b in zip(times["with"], times["without"])]
    print(f"{name}: with {statistics.median(times['with']):.3f} s, without {statistics.median(times['without']):.3f} s "
          f"(medians of {rounds}); without / with, paired: median {statistics.median(ratios):.2f} "
          f"(rounds {', '.join(f'{r:.2f}' for r in ratios)})", flush=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("lever", choices=[*LEVERS, "all"])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    for name in (LEVERS if args.lever == "all" else [args.lever]):
        measure(name, args.rounds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
