"""Resident memory of a sweep worker's run, every 300 test images of its IS evaluation.

    VAELAB_MALLOC=glibc python benchmarks/worker_memory.py RUN     # glibc's own threshold
    python benchmarks/worker_memory.py RUN                         # the default, bounded

RUN: a finished run directory (copied to /tmp/worker-memory-run first, left as it was).
It goes through ``vaelab.sweep.work.compute``, as a sweep worker does (training resumed,
here already done, then the evaluation), and stops after 1,800 images.
"""

from __future__ import annotations

import json
import shutil
import sys

import torch

from vaelab.evaluation import likelihood as L
from vaelab.sweep.work import compute


def rss() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 2**20


def main() -> None:
    torch.set_num_threads(1)
    orig, count, seen = L.importance_sampled, [0], []

    def counted(*args, **kwargs):  # one call = one chunk of 3 images at k = 5000
        out = orig(*args, **kwargs)
        count[0] += 1
        if count[0] % 100 == 0:
            seen.append(round(rss()))
        if count[0] >= 600:
            raise SystemExit(f"resident MB every 300 images: {seen}")
        return out

    L.importance_sampled = counted
    dst = "/tmp/worker-memory-run"
    shutil.rmtree(dst, ignore_errors=True)
    shutil.copytree(sys.argv[1], dst)
    with open(f"{dst}/config.json") as f:
        cfg = json.load(f)
    compute(cfg.get("config", cfg), dst, None)


if __name__ == "__main__":
    main()
