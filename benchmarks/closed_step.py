"""The closed step (objectives/closed.py) against autograd, in one process: epochs of one
trainer alternating between the two, so that both see the same data, the same machine
moment and the same weights' sizes (BENCHMARKS.md section 2).

    python benchmarks/closed_step.py --model vae-tuned --latent 20 --threads 2 --rounds 4
    python benchmarks/closed_step.py --fixed     # the per-step cost left on tiny tensors

Prints each round's ``Trainer._train_epoch`` seconds per step kind and the paired median
ratio closed / autograd; ``--fixed`` times a whole step (forward, backward, fused Adam) of
a 16-8-2 ReLU model on batches of 4, one thread, where only the per-op cost is left.  The two give the same gradients bit for bit (tests/objectives/
test_closed.py), so alternating does not change what either trains on.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import torch

from vaelab import api
from vaelab.allocator import tune_malloc
from vaelab.denormals import flush_denormals
from vaelab.training.loop import Trainer


def fixed_cost(steps: int = 2000) -> None:
    from vaelab.config import ModelConfig, ObjectiveConfig, OptimConfig
    from vaelab.models import DataInfo, build_model
    from vaelab.objectives import build_objective
    from vaelab.training.optim import FastStep, build_optimizer

    torch.set_num_threads(1)
    model = build_model(ModelConfig(latent=2, hidden=(8,), activation="relu"), DataInfo((1, 4, 4), True))
    objective = build_objective(ObjectiveConfig(kl="analytic"))
    closed = objective.closed_step(model)
    opt = build_optimizer(model.parameters(), OptimConfig())
    update = FastStep(opt)
    x = (torch.rand(4, 16, generator=torch.Generator().manual_seed(0)) > 0.5).float()

    def by_hand() -> None:
        (-closed(x)["objective"].mean()).item()
        update()

    def by_autograd() -> None:
        loss = -objective(model, x)["objective"].mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        loss.item()
        update()

    for _ in range(2):
        for name, fn in (("closed", by_hand), ("autograd", by_autograd)):
            for _ in range(200):
                fn()
            t0 = time.perf_counter()
            for _ in range(steps):
                fn()
            print(f"{name}: {(time.perf_counter() - t0) / steps * 1e6:.0f} us per step", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="vae-tuned")
    ap.add_argument("--latent", type=int, default=20)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--fixed", action="store_true", help="time the per-step cost on tiny tensors instead")
    args = ap.parse_args()
    if args.fixed:
        fixed_cost()
        return

    flush_denormals()
    cfg = api.make_config(args.model, overrides={"model.latent": args.latent, "data.binarize": "seed-paper",
                                                 "train.threads": args.threads, "train.epochs": 1})
    with tempfile.TemporaryDirectory() as tmp:
        tr = Trainer.open(cfg, f"{tmp}/run", progress=False).build(args.data_dir)
        closed = tr._closed
        if closed is None:
            raise SystemExit(f"{args.model} has no closed step (objectives/closed.py): nothing to compare")
        tune_malloc("train")
        tr._train_epoch(0)  # warm-up
        times: dict[str, list[float]] = {"closed": [], "autograd": []}
        for r in range(args.rounds):
            for name in (("closed", "autograd") if r % 2 == 0 else ("autograd", "closed")):
                tr._closed = closed if name == "closed" else None
                t0 = time.perf_counter()
                tr._train_epoch(1 + r)
                times[name].append(time.perf_counter() - t0)
            print(f"round {r + 1}: closed {times['closed'][-1]:.3f} s, autograd {times['autograd'][-1]:.3f} s",
                  flush=True)
    ratios = [c / a for c, a in zip(times["closed"], times["autograd"])]
    print(f"{args.model} N_z = {args.latent}, {args.threads} thread(s), torch {torch.__version__}: "
          f"closed {statistics.median(times['closed']):.3f} s, autograd {statistics.median(times['autograd']):.3f} s "
          f"per epoch; closed / autograd {statistics.median(ratios):.3f} "
          f"(rounds {', '.join(f'{x:.3f}' for x in ratios)})")


if __name__ == "__main__":
    main()
