"""A sweep never runs more torch threads than cores in total."""

from __future__ import annotations

import pytest

from vaelab.sweep.executors import MAX_THREADS_ENV, core_shares, threads_per_worker
from vaelab.training.loop import capped_threads


@pytest.mark.parametrize("workers,cores", [(1, 1), (1, 2), (2, 2), (3, 2), (2, 5), (3, 8), (16, 4)])
def test_workers_times_threads_within_cores(workers, cores):
    t = threads_per_worker(workers, cores)
    assert t >= 1
    assert workers * t <= max(cores, workers)  # more workers than cores: 1 thread each
    shares = core_shares(workers, list(range(cores)))
    if workers <= cores:
        assert t == len(shares[0])  # each worker uses exactly its own cores


def test_two_cores():
    assert threads_per_worker(2, 2) == 1 and threads_per_worker(1, 2) == 2


def test_run_threads_capped_inside_a_worker(monkeypatch):
    monkeypatch.delenv(MAX_THREADS_ENV, raising=False)
    assert capped_threads(4) == 4 and capped_threads(0) == 0
    monkeypatch.setenv(MAX_THREADS_ENV, "1")
    assert capped_threads(4) == 1
    assert capped_threads(0) == 0  # 0 = the worker's own setting stays


def test_a_cap_set_before_the_sweep_holds_in_its_workers(monkeypatch):
    monkeypatch.delenv(MAX_THREADS_ENV, raising=False)
    # _worker_main passes its share of the cores through capped_threads
    assert capped_threads(2) == 2  # no cap: the worker's share of the cores
    monkeypatch.setenv(MAX_THREADS_ENV, "1")  # VAELAB_MAX_THREADS=1 vaelab sweep ... (in the background)
    assert capped_threads(2) == 1 and capped_threads(1) == 1
    monkeypatch.setenv(MAX_THREADS_ENV, "8")
    assert capped_threads(2) == 2  # a cap above the share changes nothing
