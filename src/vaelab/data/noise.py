"""Input corruption for the denoising VAE (Im et al. 2017, "Denoising Criterion for
Variational Auto-Encoding Framework"): the encoder sees a corrupted x~, the decoder is
scored on the clean x.

Each noise is a pure function ``f(x, level, generator) -> x~`` listed by name in
:data:`NOISES`; it never modifies ``x`` and draws all its randomness from
``generator`` (torch's global RNG when None), so a seeded generator repeats it exactly.
At ``level = 0`` every noise returns x unchanged.
"""

from __future__ import annotations

import torch

from ..registry import Registry


def no_noise(x: torch.Tensor, level: float, generator: torch.Generator | None = None) -> torch.Tensor:
    return x


def salt_pepper(x: torch.Tensor, level: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """Each pixel, independently with probability ``level``, becomes 0 or 1 (equal odds).

    On binary data a replaced pixel keeps its value half the time, so a fraction
    ``level / 2`` of pixels actually flips.
    """
    if not 0.0 <= level <= 1.0:
        raise ValueError(f"salt-and-pepper level is a probability, got {level}")
    hit = torch.rand(x.shape, generator=generator, device=x.device) < level
    salt = torch.rand(x.shape, generator=generator, device=x.device) < 0.5
    return torch.where(hit, salt.to(x.dtype), x)


def gaussian(x: torch.Tensor, level: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """x + level * N(0, 1), not clipped: the encoder sees values outside [0, 1]."""
    if not level >= 0.0:
        raise ValueError(f"Gaussian noise level is a standard deviation, got {level}")
    eps = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    return x + level * eps


NOISES: Registry = Registry("noise", {"none": no_noise, "salt-pepper": salt_pepper, "gaussian": gaussian},
                           plugins="noise")


def corrupt(x: torch.Tensor, noise: str, level: float,
            generator: torch.Generator | None = None) -> torch.Tensor:
    """Apply the noise ``noise`` (unknown name: ConfigError listing the known)."""
    return NOISES.get(noise)(x, level, generator)
