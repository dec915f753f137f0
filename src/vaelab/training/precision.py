"""Mixed-precision training (``train.precision``): the nets' matrix products in bfloat16.

``float32`` (the default) trains every op in float32.  ``bfloat16`` runs the training
step's forward under ``torch.autocast``, which computes the nets' GEMMs and convolutions
from bfloat16 copies of their operands (the products accumulate in float32), and casts
every net's output back to float32 where it leaves the net: the distributions, the bound,
its ``logsumexp`` over k, the loss and the optimiser (its weights and moments) stay in
float32, and the gradients reach float32 weights.  On CPUs with bfloat16 instructions
(Intel AMX or AVX512-BF16) and on GPUs these products run several times faster
(BENCHMARKS.md section 9); elsewhere they are emulated and slower, which a warning says.

Only training changes.  The per-epoch validation ELBO, the IS log-likelihood and every
evaluation run in float32 on the float32 weights, so the numbers a run reports are
honest measurements of the model it trained; what bfloat16 changes is which model that
is (its products round to 8 bits of mantissa on the way in).  How far that moves a
trained model's test log-likelihood, against the spread of seeds: BENCHMARKS.md section 9.
"""

from __future__ import annotations

import contextlib
import sys
from typing import Iterator

import torch
import torch.nn as nn

from ..errors import ConfigError


def native_bf16(device: torch.device) -> bool:
    """Whether this device computes bfloat16 products in hardware (a GPU, or a CPU with
    AMX tiles or AVX512-BF16)."""
    if device.type != "cpu":
        return True
    cpu = getattr(torch, "cpu", None)
    probes = ("_is_amx_tile_supported", "_is_avx512_bf16_supported")
    return any(getattr(cpu, name, lambda: False)() for name in probes)


def _to_float32(module: nn.Module, args, out):
    """Forward hook: a net's low-precision output leaves it as float32."""
    if isinstance(out, torch.Tensor) and out.is_floating_point() and out.dtype != torch.float32:
        return out.float()
    return None


class MixedPrecision:
    """``with mp.step():`` around a training step's forward: autocast to ``dtype`` on
    ``device``, with the model's nets (its direct submodules that hold parameters)
    handing float32 back to the rest of the model.  A no-op for ``float32``."""

    def __init__(self, model: nn.Module, precision: str, device: torch.device, say: bool = True):
        self.dtype = None if precision == "float32" else getattr(torch, precision)  # config.PRECISIONS
        self.device_type = device.type
        if self.dtype is not None and device.type not in ("cpu", "cuda"):
            raise ConfigError(f"train.precision {precision} is available on the CPU and on CUDA GPUs, not on "
                              f"{device.type}; use float32 there")
        self.nets = [m for m in model.children() if any(True for _ in m.parameters())]
        if self.dtype is not None and say and not native_bf16(device):
            print(f"vaelab: warning: train.precision {precision}: this CPU has no bfloat16 instructions "
                  f"(AMX or AVX512-BF16), so its products are emulated and training is slower than in "
                  f"float32", file=sys.stderr, flush=True)

    @property
    def active(self) -> bool:
        return self.dtype is not None

    @contextlib.contextmanager
    def step(self) -> Iterator[None]:
        if self.dtype is None:
            yield
            return
        handles = [net.register_forward_hook(_to_float32) for net in self.nets]
        try:
            with torch.autocast(self.device_type, dtype=self.dtype):
                yield
        finally:
            for h in handles:
                h.remove()
