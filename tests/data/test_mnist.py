"""MNIST from the real mnist.pkl.gz: split sizes, labels, grey levels, binarisation modes."""

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import vaelab
from vaelab.config import DataConfig
from vaelab.data import binarize_dynamic, load_dataset, sources


def load(data_dir, **kw):
    return load_dataset(DataConfig(**kw), data_dir, download=False)


def is_binary(x: torch.Tensor) -> bool:
    return bool(((x == 0) | (x == 1)).all()) and 0 < float(x.mean()) < 1


def test_pkl_splits_and_labels(data_dir):
    data = load(data_dir)
    assert (data.name, data.image_shape, data.dim) == ("mnist", (1, 28, 28), 784)
    assert data.binary and data.dynamic and data.num_classes == 10
    sizes = [(len(s.x), len(s.y)) for s in (data.train, data.valid, data.test)]
    assert sizes == [(50000, 50000), (10000, 10000), (10000, 10000)]
    for split in (data.train, data.valid, data.test):
        assert split.x.dtype == torch.float32 and split.y.dtype == torch.int64
        assert split.x.shape[1] == 784
        assert int(split.y.min()) == 0 and int(split.y.max()) == 9
    counts = torch.bincount(data.train.y, minlength=10)
    assert counts.sum() == 50000 and bool(((counts > 4000) & (counts < 6000)).all())


def test_dynamic_keeps_train_grey_and_fixes_eval_sets(data_dir):
    data = load(data_dir, binarize="dynamic")
    x = data.train.x
    assert float(x.min()) == 0.0 and float(x.max()) == pytest.approx(255 / 256)  # [0, 1)
    assert ((x > 0) & (x < 1)).float().mean() > 0.05  # really grey, not binary
    again = load(data_dir, binarize="dynamic")
    for a, b in ((data.valid, again.valid), (data.test, again.test)):
        assert is_binary(a.x) and torch.equal(a.x, b.x)
    assert not torch.equal(data.valid.x[:100], data.test.x[:100])  # different seeds
    # About as much ink as the grey levels promise (grey mean 0.13 on MNIST).
    assert 0.12 < float(data.valid.x.mean()) < 0.14


def test_eval_sets_are_the_same_in_another_process(data_dir):
    """The fixed-seed samples must not depend on the process's RNG state or history."""
    torch.rand(1000)  # disturb the global RNG here; the other process starts clean
    code = ("import hashlib, sys; from vaelab.config import DataConfig; "
            "from vaelab.data import load_dataset; "
            "d = load_dataset(DataConfig(test_limit=500), sys.argv[1], download=False); "
            "print(hashlib.sha256(d.valid.x.numpy().tobytes() + d.test.x.numpy().tobytes())"
            ".hexdigest())")
    env = dict(os.environ, PYTHONPATH=str(Path(vaelab.__file__).parents[1]))
    out = subprocess.run([sys.executable, "-c", code, str(data_dir)], env=env,
                         capture_output=True, text=True, timeout=120, check=True)
    here = load(data_dir, test_limit=500)
    digest = hashlib.sha256(here.valid.x.numpy().tobytes() + here.test.x.numpy().tobytes())
    assert out.stdout.strip() == digest.hexdigest()


def test_threshold_and_seed_paper(data_dir):
    grey = load(data_dir, binarize="dynamic").train.x
    thr = load(data_dir, binarize="threshold")
    paper = load(data_dir, binarize="seed-paper")
    assert not thr.dynamic and not paper.dynamic
    assert torch.equal(thr.train.x, (grey > 0.5).float())
    assert torch.equal(paper.train.x, (grey > 0).float())
    for a, b in ((thr.train, paper.train), (thr.valid, paper.valid), (thr.test, paper.test)):
        assert is_binary(a.x) and is_binary(b.x)
        assert float(b.x.mean()) > float(a.x.mean()) + 0.03  # every faint pixel becomes ink
        assert torch.equal(a.y, b.y)


def test_limits_keep_the_first_images(data_dir):
    full = load(data_dir)
    small = load(data_dir, train_limit=100, test_limit=30)
    assert [len(s.x) for s in (small.train, small.valid, small.test)] == [100, 30, 30]
    for a, b in ((small.train, full.train), (small.valid, full.valid), (small.test, full.test)):
        assert torch.equal(a.x, b.x[: len(a.x)]) and torch.equal(a.y, b.y[: len(a.y)])


def test_callers_cannot_write_into_the_cache(data_dir):
    first = load(data_dir, train_limit=10, test_limit=10)
    for split in (first.train, first.valid, first.test):
        split.x.fill_(7.0)
        split.y.fill_(7)
    again = load(data_dir, train_limit=10, test_limit=10)
    for split in (again.train, again.valid, again.test):
        assert float(split.x.max()) <= 1.0 and int(split.y.max()) <= 9


def test_second_load_reads_nothing(data_dir, monkeypatch):
    load(data_dir, train_limit=5)  # make sure it is cached

    def no_reading(path):
        raise AssertionError(f"{path} was read again")

    monkeypatch.setattr(sources, "read_verified", no_reading)
    assert len(load(data_dir, train_limit=5).train.x) == 5


def test_binarize_dynamic_matches_grey_mean(data_dir):
    grey = load(data_dir, train_limit=5000).train.x  # (5000, 784)
    gen = torch.Generator().manual_seed(3)
    sample = binarize_dynamic(grey, gen)
    assert sample.dtype == torch.float32 and is_binary(sample)
    # The sample's mean has variance sum p(1-p) / M^2 over the M pixels.
    se = float((grey * (1 - grey)).sum().sqrt()) / grey.numel()
    assert abs(float(sample.mean()) - float(grey.mean())) < 4 * se
    assert bool((sample[grey == 0] == 0).all())  # blank pixels never become ink
    other = binarize_dynamic(grey, torch.Generator().manual_seed(4))
    assert not torch.equal(sample, other)  # a fresh sample each epoch
    assert torch.equal(sample, binarize_dynamic(grey, torch.Generator().manual_seed(3)))
