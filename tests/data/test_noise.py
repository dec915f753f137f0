"""Corruption noises for the denoising VAE: expected flip rates, identity at level 0."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from vaelab.data import corrupt
from vaelab.data.noise import gaussian, salt_pepper
from vaelab.errors import ConfigError
from vaelab.data import NOISES

N = 200_000  # pixels per statistical test


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def within_binomial(count: int, n: int, p: float, sds: float = 4.0) -> bool:
    return abs(count - n * p) <= sds * math.sqrt(n * p * (1 - p))


def test_registered():
    assert {"none", "salt-pepper", "gaussian"} <= set(NOISES.names())


@pytest.mark.parametrize("noise", ["none", "salt-pepper", "gaussian"])
def test_level_zero_is_identity(noise):
    x = torch.rand(50, 784, generator=gen(1))
    assert torch.equal(corrupt(x, noise, 0.0, gen()), x)


@pytest.mark.parametrize("p", [0.1, 0.5, 1.0])
def test_salt_pepper_on_binary_image_flips_half_the_hits(p):
    """A pixel is hit with prob p and the new value differs from a 0 with prob 1/2: p/2 flip."""
    x = torch.zeros(N)
    out = corrupt(x, "salt-pepper", p, gen())
    assert set(out.unique().tolist()) <= {0.0, 1.0}
    assert within_binomial(int((out != x).sum()), N, p / 2)


def test_salt_pepper_on_grey_image_replaces_every_hit():
    """On a constant 0.3 image every hit changes the pixel, to 0 or 1 with equal odds."""
    p = 0.2
    x = torch.full((N,), 0.3)
    out = salt_pepper(x, p, gen())
    changed = out != x
    assert within_binomial(int(changed.sum()), N, p)
    assert within_binomial(int((out[changed] == 1).sum()), int(changed.sum()), 0.5)
    assert bool((x == 0.3).all())  # input untouched


@settings(max_examples=30, deadline=None)
@given(level=st.floats(0.0, 1.0), seed=st.integers(0, 2**31))
def test_salt_pepper_only_keeps_or_saturates(level, seed):
    x = torch.rand(64, 16, generator=gen(seed))
    out = salt_pepper(x, level, gen(seed + 1))
    assert bool(((out == x) | (out == 0) | (out == 1)).all())


def test_gaussian_adds_unclipped_noise_of_the_given_std():
    x = torch.full((N,), 0.5)
    out = corrupt(x, "gaussian", 0.3, gen())
    eps = out - x
    assert abs(float(eps.mean())) < 4 * 0.3 / math.sqrt(N)
    assert float(eps.std()) == pytest.approx(0.3, rel=0.01)
    assert float(out.min()) < 0 and float(out.max()) > 1  # not clipped


def test_same_generator_same_noise():
    x = torch.rand(10, 20, generator=gen(5))
    for noise in ("salt-pepper", "gaussian"):
        assert torch.equal(corrupt(x, noise, 0.3, gen(7)), corrupt(x, noise, 0.3, gen(7)))
        assert not torch.equal(corrupt(x, noise, 0.3, gen(7)), corrupt(x, noise, 0.3, gen(8)))
    assert torch.equal(corrupt(x, "gaussian", 0.3, gen(7)), gaussian(x, 0.3, gen(7)))


def test_bad_names_and_levels():
    x = torch.zeros(3)
    with pytest.raises(ConfigError, match="unknown noise 'speckle'; choose from gaussian, none"):
        corrupt(x, "speckle", 0.1)
    with pytest.raises(ValueError):
        salt_pepper(x, 1.5)
    with pytest.raises(ValueError):
        gaussian(x, -0.1)
