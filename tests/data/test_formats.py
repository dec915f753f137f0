"""Datasets by path: an .npz file or an image folder, read into the Dataset every other part
consumes; everything malformed is one DataError line."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from vaelab.config import DataConfig
from vaelab.data import fingerprint, load_dataset
from vaelab.data.formats import HOLDOUT_FRACTION
from vaelab.errors import DataError


def write_npz(path, **arrays):
    np.savez(path, **arrays)
    return path


def grey(n, h=6, w=5, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, h, w), dtype=np.uint8)


def load(path, binary=None, **kw):
    return load_dataset(DataConfig(dataset=str(path), **kw), binary=binary)


def test_npz_shapes_scaling_labels_and_holdout(tmp_path):
    x_train, x_test = grey(40), grey(7, seed=1)
    y_train, y_test = np.arange(40) % 3, np.arange(7) % 3
    ds = load(write_npz(tmp_path / "d.npz", x_train=x_train, x_test=x_test, y_train=y_train, y_test=y_test))
    assert ds.image_shape == (1, 6, 5) and ds.num_classes == 3 and not ds.binary and not ds.dynamic
    # uint8 / 255, flattened in (C, H, W) order; the test split is untouched
    torch.testing.assert_close(ds.test.x, torch.from_numpy(x_test.reshape(7, -1) / np.float32(255)))
    assert ds.test.y.tolist() == y_test.tolist()
    # no x_valid: 10% of train held out by a fixed permutation, the rest in their order
    n_valid = round(40 * HOLDOUT_FRACTION)
    assert (len(ds.train.x), len(ds.valid.x)) == (40 - n_valid, n_valid)
    rows = {tuple(r) for r in (x_train.reshape(40, -1) / np.float32(255)).tolist()}
    got = [tuple(r) for r in torch.cat([ds.train.x, ds.valid.x]).tolist()]
    assert sorted(got) == sorted(rows)  # a partition of x_train
    assert "held out" in ds.source["note"] and ds.source["format"] == "npz"
    again = load(tmp_path / "d.npz")
    assert torch.equal(again.valid.x, ds.valid.x)  # the same hold-out every time


def test_npz_float_channels_and_a_given_validation_split(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.random((10, 3, 4, 4), dtype=np.float32)
    ds = load(write_npz(tmp_path / "rgb.npz", x_train=x, x_valid=x[:3], x_test=x[:2]))
    assert ds.image_shape == (3, 4, 4) and ds.num_classes == 0 and len(ds.valid.x) == 3
    assert (ds.train.y == -1).all() and "note" not in ds.source
    torch.testing.assert_close(ds.train.x, torch.from_numpy(x.reshape(10, -1)))


def test_grey_data_is_binarised_only_for_a_binary_likelihood(tmp_path):
    path = write_npz(tmp_path / "d.npz", x_train=grey(50), x_test=grey(20, seed=3))
    for rule in ("threshold", "seed-paper"):
        ds = load(path, binary=True, binarize=rule)
        assert ds.binary and set(torch.unique(ds.test.x).tolist()) <= {0.0, 1.0}
    dyn = load(path, binary=True, binarize="dynamic")
    assert dyn.dynamic and not set(torch.unique(dyn.train.x).tolist()) <= {0.0, 1.0}  # grey: sampled each epoch
    assert set(torch.unique(dyn.test.x).tolist()) <= {0.0, 1.0}
    # the fixed test sample is the same in every load, and its mean is the grey mean (Bernoulli)
    assert torch.equal(load(path, binary=True).test.x, dyn.test.x)
    assert abs(float(dyn.test.x.mean()) - float(load(path).test.x.mean())) < 0.05  # 600 pixels: s.e. ~0.02
    assert not load(path, binary=False).binary and not load(path).binary  # Gaussian / auto: grey stays


def test_binary_data_under_auto_is_bernoulli(tmp_path):
    x = (grey(20) > 128).astype(np.uint8) * 255
    ds = load(write_npz(tmp_path / "b.npz", x_train=x, x_test=x[:5]))
    assert ds.binary and not ds.dynamic


def test_limits_cut_every_split(tmp_path):
    ds = load(write_npz(tmp_path / "d.npz", x_train=grey(30), x_valid=grey(9), x_test=grey(8)),
              train_limit=5, test_limit=4)
    assert (len(ds.train.x), len(ds.valid.x), len(ds.test.x)) == (5, 4, 4)


@pytest.mark.parametrize("arrays, match", [
    (dict(x_train=grey(5)), "no x_test"),
    (dict(x_train=grey(5), x_test=grey(2), images=grey(2)), "unknown key"),
    (dict(x_train=grey(5), x_test=grey(2, 7, 5)), "one image shape"),
    (dict(x_train=grey(5).astype(np.float32) * 2.0, x_test=grey(2).astype(np.float32)), r"lie in \[0, 1\]"),
    (dict(x_train=np.full((4, 3, 3), np.nan, np.float32), x_test=np.zeros((2, 3, 3), np.float32)), "NaN"),
    (dict(x_train=grey(5).astype(np.int32), x_test=grey(2).astype(np.int32)), "uint8"),
    (dict(x_train=grey(0), x_test=grey(2)), "empty"),
    (dict(x_train=np.zeros((4, 8, 8, 3), np.uint8), x_test=np.zeros((2, 8, 8, 3), np.uint8)), "(N, C, H, W)"),
    (dict(x_train=grey(5), x_test=grey(2), y_train=np.arange(5)), "but not for y_test"),
    (dict(x_train=grey(5), x_test=grey(2), y_train=np.arange(4), y_test=np.arange(2)), "one label per image"),
    (dict(x_train=grey(5), x_test=grey(2), y_train=np.arange(5) % 2, y_test=np.array([0, 2])), "training classes"),
    (dict(x_train=grey(5), x_test=grey(2), y_train=np.arange(5) - 1, y_test=np.arange(2)), "negative"),
    (dict(x_train=grey(1), x_test=grey(2)), "too few"),
])
def test_bad_npz_is_one_line(tmp_path, arrays, match):
    with pytest.raises(DataError, match=match) as err:
        load(write_npz(tmp_path / "bad.npz", **arrays))
    assert "\n" not in str(err.value) and "bad.npz" in str(err.value)


def test_not_an_npz_and_a_missing_path(tmp_path):
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(DataError, match="not a readable .npz"):
        load(tmp_path / "junk.npz")
    with pytest.raises(DataError, match="no such file or folder"):
        load(tmp_path / "missing.npz")


# --- image folders ----------------------------------------------------------------------------


def make_folder(root, classes=("cat", "dog"), n=(4, 2), size=(5, 6), rgb=False, seed=0):
    rng = np.random.default_rng(seed)
    for split, count in zip(("train", "test"), n):
        for c in classes or [None]:
            folder = root / split / c if c else root / split
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(count):
                shape = (size[1], size[0], 3) if rgb else (size[1], size[0])
                Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8)).save(folder / f"{i}.png")
    return root


def test_folder_with_class_subfolders(tmp_path):
    ds = load(make_folder(tmp_path / "pets"))
    assert ds.image_shape == (1, 6, 5) and ds.num_classes == 2 and ds.source["classes"] == ["cat", "dog"]
    assert sorted(ds.test.y.tolist()) == [0, 0, 1, 1]
    assert len(ds.train.x) + len(ds.valid.x) == 8 and ds.source["format"] == "folder"
    img = np.asarray(Image.open(tmp_path / "pets" / "test" / "cat" / "0.png"), dtype=np.float32) / 255
    torch.testing.assert_close(ds.test.x[0], torch.from_numpy(img.reshape(-1)))


def test_folder_rgb_and_unlabelled(tmp_path):
    ds = load(make_folder(tmp_path / "faces", classes=None, n=(6, 2), rgb=True))
    assert ds.image_shape == (3, 6, 5) and ds.num_classes == 0 and (ds.test.y == -1).all()


@pytest.mark.parametrize("breakage, match", [
    (lambda root: (root / "test" / "cat" / "0.png").write_bytes(b"junk"), "cannot be read as an image"),
    (lambda root: Image.new("L", (9, 9)).save(root / "test" / "cat" / "9.png"), "one size"),
    (lambda root: (root / "test" / "bird").mkdir() or Image.new("L", (5, 6)).save(root / "test" / "bird" / "0.png"),
     "training classes"),
    (lambda root: Image.new("L", (5, 6)).save(root / "test" / "loose.png"), "mixes image files and subfolders"),
])
def test_bad_folder_is_one_line(tmp_path, breakage, match):
    root = make_folder(tmp_path / "pets")
    breakage(root)
    with pytest.raises(DataError, match=match) as err:
        load(root)
    assert "\n" not in str(err.value)


def test_folder_without_test_split(tmp_path):
    root = make_folder(tmp_path / "pets")
    for p in sorted((root / "test").rglob("*"), reverse=True):
        p.unlink() if p.is_file() else p.rmdir()
    (root / "test").rmdir()
    with pytest.raises(DataError, match="no test/ subfolder"):
        load(root)


def test_fingerprint_follows_the_bytes(tmp_path):
    root = make_folder(tmp_path / "pets")
    before = fingerprint(root)
    assert fingerprint(root) == before and load(root).source["sha256"] == before
    Image.new("L", (5, 6), 7).save(root / "train" / "dog" / "0.png")
    assert fingerprint(root) != before
    path = write_npz(tmp_path / "d.npz", x_train=grey(5), x_test=grey(2))
    sha = fingerprint(path)
    write_npz(path, x_train=grey(5, seed=9), x_test=grey(2))
    assert fingerprint(path) != sha and load(path).source["sha256"] == fingerprint(path)  # no stale cache
