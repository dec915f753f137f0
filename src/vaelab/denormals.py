"""Denormal floats flushed to zero on the CPU: a trained model's epoch 2-3x faster.

A float32 below 1.2e-38 is *denormal*; x86 CPUs compute with such numbers through a
microcode assist dozens of times slower than a normal operation.  Training fills Adam's
moment estimates with them: a unit that stops receiving gradient has its first and second
moments multiplied by beta1 and beta2 at every step, down through the denormal range.
Measured on a 2-core Intel Xeon (2026-12-07): the Table 1 MLP runs' epochs grew from 3.1-3.3 s
at the start of training to 8.3-8.6 s at its end, an IWAE's doubled within 2 epochs (its
normalised importance weights underflow); one more epoch of the trained DVAE (N_z = 10) took 8.0 s, and 2.8 s with
denormals flushed (BENCHMARKS.md, "Denormals").  The weights after that epoch were the
same bit for bit; only Adam moments below 1.2e-38 became 0, which changes no update (an
update from such a moment is ~1e-30 of a weight).

The mode (``VAELAB_DENORMALS``):

* ``flush`` (default): flush-to-zero and denormals-are-zero (the CPU's FTZ and DAZ flags);
* ``keep``: IEEE behaviour, denormals computed as such.

The CPU keeps the flags per thread, and a new thread inherits them from the thread that
creates it.  Two ways to set them:

* :func:`flush_denormals`, for a process vaelab owns (a sweep's worker): set once, first
  thing, so that torch's threads, started later, inherit it;
* :func:`flushed`, for a call into the library from someone else's program (``vaelab``'s
  commands, ``Trainer.fit``, ``evaluate_model``, a Ray task): the calling thread flushes
  for the call and gets its own flags back afterwards, so that the program's own float
  arithmetic stays IEEE.  Torch threads that already exist keep their flags (a program that
  ran multithreaded torch work first gets the full effect by calling
  :func:`flush_denormals` itself); threads first started inside the call keep flushing.

A no-op on CPUs without the flags (ARM, where torch reports it unsupported).
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch

from .errors import env_choice

MODES = ("flush", "keep")
ENV = "VAELAB_DENORMALS"


def denormal_mode() -> str:
    """The mode ``VAELAB_DENORMALS`` asks for (default ``flush``); a ConfigError for another."""
    return env_choice(ENV, MODES, "denormal mode")


def flush_denormals() -> str:
    """Set the calling thread's denormal mode to :func:`denormal_mode`.  -> the mode in
    force (``keep`` where the CPU cannot flush).  Cheap and idempotent: call it at every
    entry point."""
    mode = denormal_mode()
    ok = torch.set_flush_denormal(mode == "flush")
    return mode if ok else "keep"


def flushing() -> bool:
    """Whether the calling thread flushes denormals now (a denormal times 1 gives 0)."""
    return bool((torch.tensor([1e-39]) * 1.0)[0] == 0)


@contextmanager
def flushed() -> Iterator[str]:
    """The calling thread in :func:`denormal_mode` for the block, its own flags again after.
    Yields the mode in force."""
    before = flushing()
    mode = flush_denormals()
    try:
        yield mode
    finally:
        if flushing() != before:
            torch.set_flush_denormal(before)
