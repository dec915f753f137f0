"""How many torch threads a run trains on when ``train.threads`` is 0 (the default).

A step of the study's MLP VAE is a few GEMMs of 100 rows and some fifty small ops, each op
split across the threads and ending in a barrier.  On idle cores two threads make such a
step faster (1.4x on 2 cores); when other processes share the cores, every barrier waits
for whichever thread the scheduler has parked, and the same step becomes several times
slower on two threads than on one (BENCHMARKS.md, "Threads").  Which case holds is a
property of the machine at the time, so the trainer measures it: the run's own step
(forward and backward, no update) is timed at each candidate count, in interleaved rounds,
and the fastest count is kept, more threads only when they win by :data:`MARGIN` (a small
one: the probed step leaves out the optimiser and the validation pass, which gain more
from a second thread, so the probe understates what more threads give a whole epoch;
a margin of 1.25 kept the MLP VAE on one thread in some runs on an idle 2-core machine,
at 1.7x the epoch time of two).  The probe changes nothing the run computes: random draws
run on a forked generator, batch-norm statistics are put back, gradients are dropped.

The probe also compares the step's gradients across the counts.  Where they are equal bit
for bit (the MLP models on the AMD EPYC of BENCHMARKS.md, whose GEMMs split rows, not sums,
across threads; not on the Intel Xeon there, where MKL's products round differently on one
and two threads), the count can change at any time without changing the run, and the
trainer measures again at every epoch, following the machine's load.  Where they differ
(oneDNN's convolutions), the count is chosen once, at the run's first epoch, and kept, also when the run resumes, so
that the run is the same computation from start to end.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from typing import Callable, Sequence

import torch

PROBE_ROUNDS = 3  # interleaved rounds over the candidates
PROBE_STEPS = 1  # timed steps per candidate and round (after one untimed warm-up step each)
# The probe costs about eight steps.  Runs shorter than PROBE_MIN_STEPS steps in all keep
# torch's default (a test's few steps); it is repeated at an epoch's start only for epochs
# of REPROBE_MIN_STEPS or more, so that it stays under 3% of the work.
PROBE_MIN_STEPS = 200
REPROBE_MIN_STEPS = 200
MARGIN = 1.1  # more threads only when their step is this much faster


@dataclass
class Probe:
    best: int  # the thread count to train on
    per_step: dict[int, float]  # median seconds per step at each count
    invariant: bool  # the step's gradients were equal bit for bit at every count


_FIRST_SEEN: list[int] = []


def torch_default() -> int:
    """Torch's thread count as this process had it the first time a run asked (its
    default, or what OMP_NUM_THREADS or the caller set before): the most threads a run
    measures, also after an earlier run of the process chose fewer."""
    if not _FIRST_SEEN:
        _FIRST_SEEN.append(torch.get_num_threads())
    return _FIRST_SEEN[0]


def candidates(cores: int) -> list[int]:
    """Thread counts worth trying on ``cores`` cores: all of them, half, and one."""
    return sorted({cores, max(1, cores // 2), 1}, reverse=True)


def probe(step: Callable[[], Sequence[torch.Tensor]], counts: list[int], rounds: int = PROBE_ROUNDS,
          steps: int = PROBE_STEPS) -> Probe:
    """Time ``step`` (returning the tensors it computes) at each thread count in
    ``counts``; leaves torch on the chosen count."""
    times: dict[int, list[float]] = {n: [] for n in counts}
    outputs = {}
    for n in counts:  # warm-up: allocator, BLAS and oneDNN kernel choice at this count
        torch.set_num_threads(n)
        outputs[n] = [t.detach().clone() for t in step()]
    first = outputs[counts[0]]
    invariant = all(len(o) == len(first) and all(torch.equal(a, b) for a, b in zip(o, first))
                    for o in outputs.values())
    for r in range(rounds):
        for n in counts if r % 2 == 0 else counts[::-1]:
            torch.set_num_threads(n)
            for _ in range(steps):
                t0 = time.perf_counter()
                step()
                times[n].append(time.perf_counter() - t0)
    median = {n: statistics.median(v) for n, v in times.items()}
    best = min(counts)
    for n in sorted(counts):  # climb while the next count wins clearly
        if median[n] * MARGIN < median[best]:
            best = n
    torch.set_num_threads(best)
    return Probe(best, median, invariant)


def side_effect_free(model: torch.nn.Module, step: Callable[[], None]) -> Callable[[], list[torch.Tensor]]:
    """``step`` made invisible to the run: the CPU generator forked, the model's buffers
    (batch-norm statistics) restored, its gradients dropped.  -> the gradients it made."""
    def run() -> list[torch.Tensor]:
        buffers = [b.detach().clone() for b in model.buffers()]
        with torch.random.fork_rng(devices=[]):
            step()
        grads = [p.grad for p in model.parameters() if p.grad is not None]
        with torch.no_grad():
            for b, saved in zip(model.buffers(), buffers):
                b.copy_(saved)
        model.zero_grad(set_to_none=True)
        return grads
    return run
