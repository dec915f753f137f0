"""Shared fixtures.  The data directory comes from VAELAB_DATA (set by .ci/run) or the
../shared/data folder beside the checkout; tests that need real data skip without it."""

import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]


def _find_data_dir() -> Path | None:
    for cand in (os.environ.get("VAELAB_DATA"), REPO.parent / "shared" / "data"):
        if cand and (Path(cand) / "mnist.pkl.gz").exists():
            return Path(cand)
    return None


@pytest.fixture(scope="session")
def data_dir() -> Path:
    found = _find_data_dir()
    if found is None:
        pytest.skip("real data not found: set VAELAB_DATA to the folder holding mnist.pkl.gz")
    return found


@pytest.fixture(autouse=True)
def _seed_and_threads():
    """Every test starts from the same seed and one torch thread: on a machine shared with
    other work, two threads of one small computation wait on each other far longer than one
    thread takes alone (subprocesses a test starts choose their own)."""
    torch.manual_seed(0)
    torch.set_num_threads(1)
    yield
