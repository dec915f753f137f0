"""The maths of sample quality (vaelab.evaluation.quality), on features with known answers:
the Fréchet distance of Gaussians against its closed form (computed another way, with
scipy's sqrtm), and the k-NN manifold precision and recall on point sets whose balls can
be counted by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.linalg
import torch

from vaelab.evaluation.features import FeatureNet, cache_key
from vaelab.evaluation.quality import _kth_neighbour_radii, frechet_distance, precision_recall
from vaelab.data import Dataset, Split


def with_moments(n: int, mean: torch.Tensor, cov: torch.Tensor, seed: int) -> torch.Tensor:
    """n points (n, F) whose sample mean and (unbiased) covariance are exactly ``mean``, ``cov``."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, mean.shape[0], generator=g, dtype=torch.float64)
    x = x - x.mean(0)
    white = torch.linalg.cholesky(torch.cov(x.T))  # make the sample covariance the identity...
    x = torch.linalg.solve_triangular(white, x.T, upper=False).T
    return x @ torch.linalg.cholesky(cov).T + mean  # ... then exactly cov


def closed_form(mu_a, cov_a, mu_b, cov_b) -> float:
    """|mu_a - mu_b|^2 + Tr(A + B - 2 sqrtm(A B)), with scipy's general matrix square root."""
    root = scipy.linalg.sqrtm(cov_a.numpy() @ cov_b.numpy())
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a.numpy() + cov_b.numpy() - 2 * np.real(root)))


def random_cov(f: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(f, f, generator=g, dtype=torch.float64)
    return a @ a.T / f + 0.1 * torch.eye(f, dtype=torch.float64)


def test_frechet_distance_of_a_set_with_itself_is_zero():
    x = torch.randn(500, 16, generator=torch.Generator().manual_seed(0))
    scale = float(torch.trace(torch.cov(x.T.double())))
    assert frechet_distance(x, x) <= 1e-9 * scale


def test_frechet_distance_matches_the_closed_form_of_two_gaussians():
    f = 8
    mu_a, mu_b = torch.zeros(f, dtype=torch.float64), torch.linspace(-1, 1, f, dtype=torch.float64)
    cov_a, cov_b = random_cov(f, 1), random_cov(f, 2)  # not commuting: the cross term is a real matrix root
    a, b = with_moments(400, mu_a, cov_a, 3), with_moments(300, mu_b, cov_b, 4)
    want = closed_form(mu_a, cov_a, mu_b, cov_b)
    assert frechet_distance(a, b) == pytest.approx(want, rel=1e-8)
    assert frechet_distance(b, a) == pytest.approx(want, rel=1e-8)  # symmetric


def test_frechet_distance_of_a_shift_is_its_squared_length():
    x = torch.randn(300, 5, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    shift = torch.tensor([3.0, 0.0, -4.0, 0.0, 0.0], dtype=torch.float64)
    assert frechet_distance(x, x + shift) == pytest.approx(25.0, rel=1e-9)


def test_frechet_distance_of_isotropic_scalings():
    """Commuting covariances I and s^2 I: FD = F (1 - s)^2."""
    f, s = 6, 3.0
    eye = torch.eye(f, dtype=torch.float64)
    a = with_moments(200, torch.zeros(f, dtype=torch.float64), eye, 6)
    b = with_moments(200, torch.zeros(f, dtype=torch.float64), s * s * eye, 7)
    assert frechet_distance(a, b) == pytest.approx(f * (1 - s) ** 2, rel=1e-9)


def test_kth_neighbour_radii_by_hand():
    x = torch.tensor([[0.0], [1.0], [3.0], [7.0]])
    assert _kth_neighbour_radii(x, 1).tolist() == [1.0, 1.0, 2.0, 4.0]
    assert _kth_neighbour_radii(x, 2).tolist() == [3.0, 2.0, 3.0, 6.0]
    with pytest.raises(ValueError):
        _kth_neighbour_radii(x, 4)


def test_precision_and_recall_by_hand():
    """Real: two clusters; fake: only the first one, plus points far from everything."""
    g = torch.Generator().manual_seed(0)
    left = torch.randn(200, 2, generator=g) * 0.1
    right = torch.randn(200, 2, generator=g) * 0.1 + torch.tensor([10.0, 0.0])
    real = torch.cat([left, right])
    assert precision_recall(real, real) == (1.0, 1.0)
    far = torch.full((50, 2), 100.0) + torch.randn(50, 2, generator=g)
    fake = torch.cat([torch.randn(150, 2, generator=g) * 0.1, far])
    precision, recall = precision_recall(real, fake)
    assert precision == pytest.approx(150 / 200, abs=0.03)  # the far points are in no real ball
    assert recall == pytest.approx(200 / 400, abs=0.03)  # the right cluster is in no fake ball


def test_feature_net_fits_any_image_shape():
    for shape in [(1, 28, 28), (1, 28, 20), (3, 9, 5), (1, 1, 1)]:
        for classes in (0, 4):
            net = FeatureNet(shape, classes)
            x = torch.rand(3, math.prod(shape))
            assert net.features(x).shape == (3, 128)
            assert net(x).shape == (3, classes if classes else math.prod(shape))


def test_the_cache_key_follows_the_training_images_and_labels():
    x = torch.rand(10, 4)
    y = torch.arange(10) % 2
    split = Split(x, y)

    def ds(train: Split, dynamic: bool = False) -> Dataset:
        return Dataset("toy", train, split, split, (1, 2, 2), True, 2, dynamic)

    base = cache_key(ds(split))
    assert cache_key(ds(Split(x.clone(), y.clone()))) == base
    assert cache_key(ds(Split(x, 1 - y))) != base
    assert cache_key(ds(Split((x > 0.5).float(), y))) != base  # another binarisation
    assert cache_key(ds(split, dynamic=True)) != base
