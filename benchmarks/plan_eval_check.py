"""The plan's estimate of an IS evaluation against the evaluation itself, for one preset.

    python benchmarks/plan_eval_check.py vae-tuned --images 300 [--latent 20] [--threads 1]

Times the shape as ``vaelab sweep --plan`` does (``plan._measure``: a few training
batches, then ``evaluate_model`` on one chunk of test images at the run's ``eval.k``),
then evaluates the first IMAGES test images of the same freshly built model at the same k
in the same process, and prints both as milliseconds per image.  Run two copies side by
side to see the 2 x 1 packing (BENCHMARKS.md section 4).
"""

from __future__ import annotations

import argparse
import tempfile
import time

import torch

from vaelab import api
from vaelab.denormals import flush_denormals
from vaelab.evaluation.likelihood import evaluate_model
from vaelab.runs import config_dataset
from vaelab.sweep import plan
from vaelab.training import Trainer


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("preset")
    ap.add_argument("--images", type=int, default=300)
    ap.add_argument("--latent", type=int, default=20)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--data-dir", default=None)
    args = ap.parse_args()
    flush_denormals()
    cfg = api.make_config(args.preset, overrides={"model.latent": args.latent, "data.binarize": "seed-paper"})
    t = plan._measure(cfg.to_dict(), args.data_dir, args.threads)
    ds = config_dataset(cfg, args.data_dir)
    n_test = int(ds.test.x.shape[0])
    with tempfile.TemporaryDirectory() as tmp:
        model = Trainer.open(cfg, f"{tmp}/run", progress=False).build(dataset=ds).model
        torch.set_num_threads(args.threads)
        x = ds.test.x[:args.images]
        y = ds.test.y[:args.images] if model.cond_dim else None
        t0 = time.perf_counter()
        evaluate_model(model, x, y, k=cfg.eval.k, seed=cfg.eval.seed, progress=False)
        real = (time.perf_counter() - t0) / args.images
    planned = t["eval_s"] / n_test
    print(f"{args.preset} N_z = {args.latent}, k = {cfg.eval.k}, {args.threads} thread(s): plan "
          f"{1000 * planned:.1f} ms per image, evaluation of {args.images} images {1000 * real:.1f} ms "
          f"(plan / evaluation {planned / real:.2f})", flush=True)


if __name__ == "__main__":
    main()
