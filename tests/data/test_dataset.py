"""The Split / Dataset contract, the registry lookup and dynamic binarisation."""

import dataclasses

import pytest
import torch

from vaelab.config import DataConfig
from vaelab.data import Dataset, Split, binarize_dynamic, load_dataset
from vaelab.errors import ConfigError
from vaelab.data import DATASETS


def tiny(n=4, d=6):
    return Split(torch.rand(n, d), torch.full((n,), -1))


def test_dataset_is_frozen_and_knows_its_dim():
    data = Dataset("toy", tiny(), tiny(), tiny(), (1, 2, 3), binary=False, num_classes=0,
                   dynamic=False)
    assert data.dim == 6
    with pytest.raises(dataclasses.FrozenInstanceError):
        data.name = "other"


def test_split_checks_shapes():
    with pytest.raises(ValueError, match="Split needs"):
        Split(torch.zeros(3, 2), torch.zeros(4))
    with pytest.raises(ValueError):
        Split(torch.zeros(3), torch.zeros(3))


def test_head_copies():
    split = tiny()
    head = split.head(2)
    head.x.fill_(5)
    assert len(head.x) == 2 and float(split.x.max()) <= 1
    assert len(split.head(None).x) == 4


def test_registered_and_unknown_names(tmp_path):
    assert {"mnist", "frey"} <= set(DATASETS.names())
    with pytest.raises(ConfigError, match="unknown dataset 'cifar'; choose from frey, mnist"):
        load_dataset(DataConfig(dataset="cifar"), tmp_path, download=False)


def test_binarize_dynamic_edges_and_mean():
    assert torch.equal(binarize_dynamic(torch.zeros(5)), torch.zeros(5))
    assert torch.equal(binarize_dynamic(torch.ones(5)), torch.ones(5))
    p = torch.linspace(0, 1, 101).repeat(2000)  # (202000,)
    sample = binarize_dynamic(p, torch.Generator().manual_seed(0))
    se = float((p * (1 - p)).sum().sqrt()) / p.numel()
    assert abs(float(sample.mean()) - float(p.mean())) < 4 * se
    assert binarize_dynamic(p.double()).dtype == torch.float32
