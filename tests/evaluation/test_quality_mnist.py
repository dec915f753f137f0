"""Sample quality on real MNIST, in the features of the classifier vaelab trains (once per
machine, a few minutes on a CPU; cached after).  What the numbers must do follows from
their definitions: the Fréchet distance of a set with itself is 0 and that of two samples
of one distribution is only its finite-sample bias; it grows with every step of added
noise or blur; precision counts samples on the data's manifold, so it halves when half
the samples are noise; recall counts the data covered, so one class covers about its
share of the test set."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from vaelab.config import DataConfig
from vaelab.data import load_dataset
from vaelab.evaluation.features import feature_net
from vaelab.evaluation.quality import frechet_distance, precision_recall

pytestmark = pytest.mark.slow

N = 2000


@pytest.fixture(scope="module")
def mnist(data_dir):
    """MNIST as Table 1's runs see it (seed-paper binarisation) and its feature network."""
    ds = load_dataset(DataConfig(dataset="mnist", binarize="seed-paper"), data_dir)
    return ds, feature_net(ds, progress=False)


def blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """A separable Gaussian blur of (N, 784) images."""
    r = 3
    t = torch.arange(-r, r + 1, dtype=torch.float32)
    k = torch.exp(-t ** 2 / (2 * sigma ** 2))
    k = k / k.sum()
    img = x.reshape(-1, 1, 28, 28)
    img = F.conv2d(F.pad(img, (r, r, 0, 0), mode="replicate"), k.view(1, 1, 1, -1))
    img = F.conv2d(F.pad(img, (0, 0, r, r), mode="replicate"), k.view(1, 1, -1, 1))
    return img.reshape(-1, 784)


def salt_and_pepper(x: torch.Tensor, p: float, seed: int = 0) -> torch.Tensor:
    flip = torch.rand(x.shape, generator=torch.Generator().manual_seed(seed)) < p
    return torch.where(flip, 1 - x, x)


def test_the_classifier_is_worth_using(mnist):
    ds, nets = mnist
    assert nets.kind == "classifier"
    assert nets.record["test_accuracy"] >= 0.98  # on all 10,000 test images
    assert nets.record["train_images"] == 50_000
    assert (nets.predict(ds.test.x[:N]) == ds.test.y[:N]).double().mean() >= 0.98


def test_fd_of_the_test_set_with_itself_and_with_the_validation_set(mnist):
    ds, nets = mnist
    f_test = nets.features(ds.test.x[:N])
    scale = float(torch.trace(torch.cov(f_test.T)))
    assert frechet_distance(f_test, f_test) <= 1e-9 * scale
    # Two samples of one distribution are apart by the estimator's bias only: that of two halves
    # of the test set at the same N.  The validation images come from the training split's
    # writers, so they may sit a little further (measured: 2.2 times the floor), but within
    # the same order, and far below a visible blur.
    half = N // 2
    f_a, f_b = nets.features(ds.test.x[:half]), nets.features(ds.test.x[half:N])
    floor = frechet_distance(f_a, f_b)
    fd_valid = frechet_distance(nets.features(ds.valid.x[:half]), f_a)
    assert 0 < floor <= fd_valid <= 4 * floor
    assert fd_valid <= 0.05 * scale
    assert fd_valid * 5 < frechet_distance(nets.features(blur(ds.test.x[:half], 1.0)), f_a)


def test_fd_grows_with_every_step_of_noise_and_blur(mnist):
    ds, nets = mnist
    x = ds.test.x[:N]
    f_test = nets.features(x)
    noisy = [frechet_distance(nets.features(salt_and_pepper(x, p)), f_test) for p in (0.0, 0.01, 0.02, 0.05, 0.1, 0.2)]
    blurred = [frechet_distance(nets.features(blur(x, s)), f_test) for s in (0.5, 1.0, 1.5, 2.0)]
    assert noisy[0] == pytest.approx(0.0, abs=1e-6)
    assert all(a < b for a, b in zip(noisy, noisy[1:])), noisy
    assert all(a < b for a, b in zip([0.0] + blurred, blurred)), blurred


def test_precision_falls_when_samples_are_noise(mnist):
    ds, nets = mnist
    f_test = nets.features(ds.test.x[:N])
    real_like = ds.valid.x[:N]
    p_clean, _ = precision_recall(f_test, nets.features(real_like))
    half = real_like.clone()
    half[: N // 2] = torch.rand(N // 2, 784, generator=torch.Generator().manual_seed(1))
    p_half, _ = precision_recall(f_test, nets.features(half))
    p_noise, _ = precision_recall(f_test, nets.features(torch.rand(N, 784, generator=torch.Generator().manual_seed(2))))
    assert p_clean > 0.8
    assert p_noise <= 0.01
    assert p_half == pytest.approx(p_clean / 2, abs=0.04)  # noise lands in no ball; the rest as before


def test_recall_falls_when_only_one_class_is_sampled(mnist):
    ds, nets = mnist
    f_test = nets.features(ds.test.x[:N])
    _, r_all = precision_recall(f_test, nets.features(ds.valid.x[:N]))
    ones = ds.valid.x[ds.valid.y == 1][:N]
    p_one, r_one = precision_recall(f_test, nets.features(ones))
    share = float((ds.test.y[:N] == 1).double().mean())  # about 0.11
    assert r_all > 0.8
    assert r_one < share + 0.1  # ones cover the test ones, and little else
    assert p_one > 0.8  # each sampled one still looks real
