"""Store.add_metrics: a score computed after a run finished joins its stored metrics."""

import math

import pytest

from vaelab.store import Store, StoreError


@pytest.fixture
def store(tmp_path):
    s = Store(tmp_path / "store.sqlite")
    s.add_experiment("e", "smoke", {}, [("a", "vae", {"name": "vae"}), ("b", "vae", {"name": "vae", "x": 1})])
    s.claim_id("a", "o", "w")
    s.finish("a", {"elbo": -100.0, "quality_error": "VaelabError: too few test images"}, epochs=1)
    yield s
    s.close()


def test_metrics_are_merged_and_replaced_keys_dropped(store):
    row = store.add_metrics("a", {"quality": {"fd": 12.5, "n": 100}}, drop=("quality_error",))
    assert row.metrics == {"elbo": -100.0, "quality": {"fd": 12.5, "n": 100}}
    assert row.status == "done" and row.epochs == 1
    assert store.get("a").metrics == row.metrics


def test_only_finished_runs_and_finite_numbers(store):
    with pytest.raises(StoreError):
        store.add_metrics("b", {"quality": {"fd": 1.0}})  # queued
    with pytest.raises(StoreError):
        store.add_metrics("nope", {"quality": {"fd": 1.0}})
    with pytest.raises(StoreError):
        store.add_metrics("a", {"quality": {"fd": math.nan}})
    assert store.get("a").metrics["elbo"] == -100.0 and "quality" not in store.get("a").metrics
