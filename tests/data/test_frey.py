"""Frey Faces: the split, the grey levels, and malformed .mat files."""

import numpy as np
import pytest
import scipy.io
import torch

from vaelab.config import DataConfig
from vaelab.data import load_dataset
from vaelab.errors import DataError


@pytest.fixture(scope="module")
def frey_dir(data_dir):
    if not (data_dir / "frey_rawface.mat").exists():
        pytest.skip("frey_rawface.mat is not beside mnist.pkl.gz")
    return data_dir


def load(folder, **kw):
    return load_dataset(DataConfig(dataset="frey", **kw), folder, download=False)


def test_split_shapes_and_flags(frey_dir):
    data = load(frey_dir)
    assert (data.name, data.image_shape, data.dim) == ("frey", (1, 28, 20), 560)
    assert not data.binary and not data.dynamic and data.num_classes == 0
    assert [len(s.x) for s in (data.train, data.valid, data.test)] == [1592, 177, 196]
    for split in (data.train, data.valid, data.test):
        assert split.x.dtype == torch.float32 and split.x.shape[1] == 560
        assert split.y.dtype == torch.int64 and bool((split.y == -1).all())


def test_grey_levels(frey_dir):
    data = load(frey_dir)
    every = torch.cat([data.train.x, data.valid.x, data.test.x])  # all 1965 frames, once each
    assert float(every.min()) == pytest.approx(8 / 255) and float(every.max()) == pytest.approx(238 / 255)
    assert float(every.mean()) * 255 == pytest.approx(154.46, abs=0.01)
    assert len(every.unique()) > 200  # continuous, not binarised


def test_split_is_the_seeded_permutation_of_the_file(frey_dir):
    ff = scipy.io.loadmat(frey_dir / "frey_rawface.mat")["ff"]  # (560, 1965) uint8
    frames = torch.from_numpy(ff.T.astype(np.float32) / 255)  # row i = frame i, 28x20 row-major
    order = torch.randperm(1965, generator=torch.Generator().manual_seed(0))
    data = load(frey_dir)
    # the study's 90% training faces, of which the last 177 are held out for validation
    assert torch.equal(data.train.x, frames[order[:1592]])
    assert torch.equal(data.valid.x, frames[order[1592:1769]])
    assert torch.equal(data.test.x, frames[order[1769:]])  # no test face is ever validated on


def test_binarize_is_ignored_and_limits_apply(frey_dir):
    full = load(frey_dir)
    thr = load(frey_dir, binarize="threshold")
    assert torch.equal(thr.train.x, full.train.x) and not thr.binary
    small = load(frey_dir, train_limit=10, test_limit=5)
    assert [len(s.x) for s in (small.train, small.valid, small.test)] == [10, 5, 5]
    assert torch.equal(small.train.x, full.train.x[:10])
    assert torch.equal(small.valid.x, full.valid.x[:5])


def test_splits_do_not_share_memory(frey_dir):
    data = load(frey_dir, test_limit=5)
    data.valid.x.fill_(2.0)
    assert float(data.test.x.max()) <= 1.0
    assert float(load(frey_dir, test_limit=5).valid.x.max()) <= 1.0


@pytest.mark.parametrize("content, match", [
    ({"ff": np.zeros((560, 100), np.uint8)}, r"expected uint8 \(560, 1965\)"),
    ({"ff": np.zeros((560, 1965), np.float64)}, "'ff' is float64"),
    ({"faces": np.zeros((560, 1965), np.uint8)}, "no variable 'ff'"),
])
def test_malformed_mat_is_refused(isolated, trust, content, match):
    path = isolated / "frey_rawface.mat"
    scipy.io.savemat(path, content)
    trust(path)
    with pytest.raises(DataError, match=match):
        load(isolated)


def test_garbage_mat_is_refused(isolated, trust):
    path = isolated / "frey_rawface.mat"
    path.write_bytes(b"MATLAB 5.0 MAT-file" + bytes(200))
    trust(path)
    with pytest.raises(DataError, match="not a readable MATLAB file"):
        load(isolated)
