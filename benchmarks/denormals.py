"""One more epoch of a trained run, with the CPU's denormals flushed and kept (VAELAB_DENORMALS).

    python benchmarks/denormals.py RUN [--rounds 3] [--threads 1]

RUN is a finished run directory (its weights and optimiser state are what matters: Adam's
moments of weights that get no gradient, e.g. those of MNIST's always-black border pixels,
decay into the denormal range over a long training).  Each round copies RUN's newest
checkpoint to a scratch directory, asks for one epoch more and trains it with
``vaelab train --resume`` as a whole command, once per mode, the modes interleaved.
Prints each epoch's seconds (as the run records them), the median per mode, their ratio,
how many optimiser-state entries are denormal in RUN's checkpoint, and whether the two
modes ended with the same weights bit for bit.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import torch
from safetensors.torch import load_file

from vaelab.runs import list_checkpoints

TINY = torch.finfo(torch.float32).tiny  # the smallest normal float32, 1.18e-38


def denormal_count(tensors: dict[str, torch.Tensor]) -> dict[str, int]:
    out = {}
    for name, t in tensors.items():
        if t.is_floating_point():
            n = int(((t != 0) & (t.abs() < TINY)).sum())
            if n:
                out[name] = n
    return out


def one_more_epoch(run: Path, scratch: Path, mode: str, threads: int) -> tuple[float, dict[str, torch.Tensor]]:
    if scratch.exists():
        shutil.rmtree(scratch)
    scratch.mkdir(parents=True)
    newest = list_checkpoints(run / "checkpoints")[0]
    (scratch / "checkpoints").mkdir()
    for suffix in (".safetensors", ".json"):
        shutil.copy2(newest.with_suffix(suffix), scratch / "checkpoints" / newest.with_suffix(suffix).name)
    shutil.copy2(run / "metrics.jsonl", scratch / "metrics.jsonl")
    body = json.loads((run / "config.json").read_text())
    body["config"]["train"]["epochs"] += 1
    body["config"]["train"]["threads"] = threads
    (scratch / "config.json").write_text(json.dumps(body))
    env = {**os.environ, "VAELAB_DENORMALS": mode}
    subprocess.run([sys.executable, "-m", "vaelab.cli", "train", "--resume", "--out", str(scratch), "--quiet"],
                   env=env, check=True, capture_output=True)
    last = json.loads((scratch / "metrics.jsonl").read_text().splitlines()[-1])
    weights = load_file(str(list_checkpoints(scratch / "checkpoints")[0].with_suffix(".safetensors")))
    return float(last["seconds"]), {k: v for k, v in weights.items() if k.startswith("model.")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run", type=Path)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    state = load_file(str(list_checkpoints(args.run / "checkpoints")[0].with_suffix(".safetensors")))
    counts = denormal_count(state)
    total = sum(v.numel() for k, v in state.items() if v.is_floating_point())
    print(f"{args.run}: {sum(counts.values())} of {total} stored floats are denormal "
          f"({', '.join(f'{k} {n}' for k, n in counts.items()) or 'none'})")
    seconds: dict[str, list[float]] = {"keep": [], "flush": []}
    weights = {}
    with tempfile.TemporaryDirectory(prefix="vaelab-denormals-") as tmp:
        for rnd in range(args.rounds):
            for mode in ("keep", "flush"):
                s, weights[mode] = one_more_epoch(args.run, Path(tmp) / mode, mode, args.threads)
                seconds[mode].append(s)
                print(f"round {rnd + 1} {mode:5s}: {s:.2f} s per epoch ({args.threads} thread(s))", flush=True)
    keep, flush = (statistics.median(seconds[m]) for m in ("keep", "flush"))
    same = all(torch.equal(weights["keep"][k], weights["flush"][k]) for k in weights["keep"])
    print(f"median: keep {keep:.2f} s, flush {flush:.2f} s; flush/keep {flush / keep:.2f} "
          f"({keep / flush:.2f}x faster); weights after the epoch identical bit for bit: {same}")


if __name__ == "__main__":
    main()
