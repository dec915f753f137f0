"""MNIST from IDX files and from small trusted pickles, written by the tests themselves."""

import gzip
import pickle
import struct

import numpy as np
import pytest
import torch

from vaelab.config import DataConfig
from vaelab.data import load_dataset, mnist, sources
from vaelab.errors import DataError


@pytest.fixture
def small_valid(monkeypatch):
    monkeypatch.setattr(mnist, "VALID_SIZE", 5)


def test_idx_last_train_images_become_validation(isolated, fake_idx, small_valid):
    raw = fake_idx(isolated / "d", n_train=30, n_test=7)
    data = load_dataset(DataConfig(binarize="dynamic"), isolated / "d", download=False)
    assert [len(s.x) for s in (data.train, data.valid, data.test)] == [25, 5, 7]
    images, labels = raw["train-images-idx3-ubyte.gz"], raw["train-labels-idx1-ubyte.gz"]
    grey = torch.from_numpy(images.reshape(30, 784).astype(np.float32) / 255)
    assert torch.equal(data.train.x, grey[:25])  # grey = byte / 255, order kept
    assert torch.equal(data.train.y, torch.from_numpy(labels[:25].astype(np.int64)))
    assert torch.equal(data.valid.y, torch.from_numpy(labels[25:].astype(np.int64)))
    # valid is a fixed Bernoulli sample of the last 5 training images: ink only where grey
    assert bool((data.valid.x[grey[25:] == 0] == 0).all())
    assert bool((data.valid.x[grey[25:] == 1] == 1).all())
    test_labels = raw["t10k-labels-idx1-ubyte.gz"]
    assert torch.equal(data.test.y, torch.from_numpy(test_labels.astype(np.int64)))


def test_idx_threshold(isolated, fake_idx, small_valid):
    raw = fake_idx(isolated, n_train=12, n_test=3)
    data = load_dataset(DataConfig(binarize="threshold"), isolated, download=False)
    expected = torch.from_numpy(raw["t10k-images-idx3-ubyte.gz"].reshape(3, 784) >= 128).float()
    assert torch.equal(data.test.x, expected)  # byte/255 > 0.5 <=> byte >= 128


def test_pkl_is_preferred_to_idx_in_the_same_dir(isolated, fake_idx, trust, small_valid):
    fake_idx(isolated)
    rng = np.random.default_rng(0)
    splits = tuple((rng.random((n, 784), dtype=np.float32), rng.integers(0, 10, n))
                   for n in (4, 3, 2))
    # Protocol 4: Python 3's protocol 2 wraps bytes in _codecs.encode, which is refused.
    (isolated / "mnist.pkl.gz").write_bytes(gzip.compress(pickle.dumps(splits, protocol=4)))
    trust(isolated / "mnist.pkl.gz")
    data = load_dataset(DataConfig(), isolated, download=False)
    assert [len(s.x) for s in (data.train, data.valid, data.test)] == [4, 3, 2]
    assert torch.equal(data.train.x, torch.from_numpy(splits[0][0]))


def test_too_few_training_images(isolated, fake_idx, small_valid):
    fake_idx(isolated, n_train=5)
    with pytest.raises(DataError, match="too few to keep the last 5"):
        load_dataset(DataConfig(), isolated, download=False)


@pytest.fixture
def unknown_idx(isolated, fake_idx, monkeypatch):
    """A fake IDX set whose hashes nobody published: only the parser guards against it."""
    fake_idx(isolated)
    for name in mnist.IDX:
        monkeypatch.setitem(sources.KNOWN_FILES, name, sources.FileSpec(None, None))
    return isolated


def test_wrong_magic_is_refused(isolated, unknown_idx):
    labels = isolated / "train-labels-idx1-ubyte.gz"
    (isolated / "train-images-idx3-ubyte.gz").write_bytes(labels.read_bytes())
    with pytest.raises(DataError, match="magic 2049, expected 2051"):
        load_dataset(DataConfig(), isolated, download=False)


def test_truncated_idx_is_refused(isolated, unknown_idx):
    path = isolated / "t10k-images-idx3-ubyte.gz"
    raw = gzip.decompress(path.read_bytes())
    path.write_bytes(gzip.compress(raw[:-100]))
    with pytest.raises(DataError, match="announces 7 items .* truncated"):
        load_dataset(DataConfig(), isolated, download=False)


def test_not_gzip_is_refused(isolated, unknown_idx):
    (isolated / "t10k-labels-idx1-ubyte.gz").write_bytes(b"plain text, not gzip")
    with pytest.raises(DataError, match="not a gzipped IDX file"):
        load_dataset(DataConfig(), isolated, download=False)


def test_bad_image_size_and_label_count(isolated, unknown_idx, small_valid):
    path = isolated / "t10k-labels-idx1-ubyte.gz"
    path.write_bytes(gzip.compress(struct.pack(">II", 2049, 6) + bytes(6)))
    with pytest.raises(DataError, match="holds 7 images but t10k-labels-idx1-ubyte.gz 6 labels"):
        load_dataset(DataConfig(), isolated, download=False)
    path = isolated / "t10k-images-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(struct.pack(">IIII", 2051, 1, 32, 32) + bytes(1024)))
    with pytest.raises(DataError, match="32x32 images"):
        load_dataset(DataConfig(), isolated, download=False)


def test_pkl_with_wrong_structure_is_refused(isolated, trust):
    odd = (np.zeros((3, 10), np.float32), np.zeros(3, np.int64))  # 10 pixels, one split
    (isolated / "mnist.pkl.gz").write_bytes(gzip.compress(pickle.dumps((odd, odd, odd))))
    trust(isolated / "mnist.pkl.gz")
    with pytest.raises(DataError, match=r"not \(N, 784\)"):
        load_dataset(DataConfig(), isolated, download=False)
