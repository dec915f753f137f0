"""How many torch threads a run trains on when ``train.threads`` is 0 (the default).

A step of the study's MLP VAE is a few GEMMs of 100 rows and some fifty small ops, each op
split across the threads and ending in a barrier.  On idle cores two threads make such a
step faster (1.4x on 2 cores); when other processes share the cores, every barrier waits
for whichever thread the scheduler has parked, and the same step becomes several times
slower on two threads than on one (BENCHMARKS.md, "Threads").  Which case holds is a
property of the machine at the time, so the trainer measures it: the run's own step
(forward and backward, no update) is timed at each candidate count, in interleaved rounds,
and the fastest count is kept for the run.  The probe changes nothing the run computes:
random draws run on a forked generator, batch-norm statistics are put back, gradients
are dropped.
"""

from __future__ import annotations

import statistics
import time
from typing import Callable

import torch

PROBE_ROUNDS = 2  # interleaved rounds over the candidates
PROBE_STEPS = 2  # timed steps per candidate and round (after one untimed warm-up step)
PROBE_MIN_STEPS = 1000  # runs shorter than this many steps in all keep torch's default


def candidates(cores: int) -> list[int]:
    """Thread counts worth trying on ``cores`` cores: all of them, half, and one."""
    return sorted({cores, max(1, cores // 2), 1}, reverse=True)


def probe(step: Callable[[], None], counts: list[int], rounds: int = PROBE_ROUNDS,
          steps: int = PROBE_STEPS) -> tuple[int, dict[int, float]]:
    """Time ``step`` at each thread count in ``counts``.  -> (the fastest count, {count:
    median seconds per step}).  Leaves torch on the fastest count."""
    times: dict[int, list[float]] = {n: [] for n in counts}
    for n in counts:  # warm-up: allocator, BLAS and oneDNN kernel choice at this count
        torch.set_num_threads(n)
        step()
    for r in range(rounds):
        for n in counts if r % 2 == 0 else counts[::-1]:
            torch.set_num_threads(n)
            for _ in range(steps):
                t0 = time.perf_counter()
                step()
                times[n].append(time.perf_counter() - t0)
    median = {n: statistics.median(v) for n, v in times.items()}
    best = min(counts, key=lambda n: (median[n], n))
    torch.set_num_threads(best)
    return best, median


def side_effect_free(model: torch.nn.Module, step: Callable[[], None]) -> Callable[[], None]:
    """``step`` made invisible to the run: the CPU generator forked, the model's buffers
    (batch-norm statistics) restored, its gradients dropped."""
    def run() -> None:
        buffers = [b.detach().clone() for b in model.buffers()]
        with torch.random.fork_rng(devices=[]):
            step()
        with torch.no_grad():
            for b, saved in zip(model.buffers(), buffers):
                b.copy_(saved)
        model.zero_grad(set_to_none=True)
    return run
