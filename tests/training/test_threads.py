"""train.threads 0: a CPU run measures its own step on 1..N threads and keeps the fastest
count (training/threads.py); the measurement changes nothing the run computes."""

from __future__ import annotations

import pytest
import torch

from vaelab.config import RunConfig
from vaelab.data import Dataset, Split
from vaelab.models import DataInfo, build_model
from vaelab.sweep.executors import MAX_THREADS_ENV
from vaelab.training import Trainer
from vaelab.training import loop
from vaelab.training import threads as threads_module
from vaelab.training.threads import Probe, candidates, probe, side_effect_free



def tiny_dataset(n_train: int) -> Dataset:
    g = torch.Generator().manual_seed(0)

    def split(n):
        return Split(torch.rand(n, 64, generator=g), torch.randint(0, 10, (n,), generator=g))

    return Dataset(name="mnist", train=split(n_train), valid=split(40), test=split(40), image_shape=(1, 8, 8),
                   binary=True, num_classes=10, dynamic=True)


@pytest.fixture(autouse=True)
def keep_threads(monkeypatch):
    before = torch.get_num_threads()
    monkeypatch.setattr(threads_module, "_FIRST_SEEN", [2])  # torch's default as a 2-core process has it
    yield
    torch.set_num_threads(before)


def test_the_most_threads_tried_is_torchs_first_count(monkeypatch):
    monkeypatch.setattr(threads_module, "_FIRST_SEEN", [])
    torch.set_num_threads(2)
    assert threads_module.torch_default() == 2
    torch.set_num_threads(1)  # an earlier run of the process chose one thread
    assert threads_module.torch_default() == 2


def test_candidates():
    assert candidates(1) == [1]
    assert candidates(2) == [2, 1]
    assert candidates(16) == [16, 8, 1]


class FakeClock:
    """time.perf_counter for the probe: a step at n threads takes ``cost[n]`` seconds."""

    def __init__(self, cost: dict[int, float]):
        self.cost, self.now, self.seen = cost, 0.0, []

    def __call__(self) -> float:
        return self.now

    def step(self, result=None):
        n = torch.get_num_threads()
        self.seen.append(n)
        self.now += self.cost[n]
        return [torch.ones(3) if result is None else result(n)]


def test_probe_keeps_the_fastest_count(monkeypatch):
    clock = FakeClock({2: 0.05, 1: 0.005})  # two threads ten times slower: a busy machine
    monkeypatch.setattr(threads_module.time, "perf_counter", clock)
    found = probe(clock.step, [2, 1], rounds=2, steps=1)
    assert found.best == 1 and torch.get_num_threads() == 1 and found.invariant
    assert found.per_step == pytest.approx({2: 0.05, 1: 0.005})
    assert clock.seen.count(1) == clock.seen.count(2) == 3  # a warm-up and one step per round each


@pytest.mark.parametrize("two_threads,best", [(0.5, 2), (0.95, 1)])
def test_more_threads_only_when_they_win_clearly(monkeypatch, two_threads, best):
    clock = FakeClock({2: two_threads, 1: 1.0})
    monkeypatch.setattr(threads_module.time, "perf_counter", clock)
    # 5% faster is inside the margin: the single thread stays; twice as fast wins
    found = probe(lambda: clock.step(lambda n: torch.full((2,), float(n))), [2, 1], rounds=2, steps=2)
    assert found.best == best
    assert not found.invariant  # the step's results differ between the counts


def test_probe_step_leaves_no_trace():
    torch.manual_seed(0)
    model = build_model(RunConfig.from_dict({"model": {"arch": "conv", "latent": 3}}).model,
                        DataInfo((1, 8, 8), True)).train()
    x = (torch.rand(20, 64) > 0.5).float()
    buffers = {k: v.clone() for k, v in model.named_buffers()}
    rng = torch.get_rng_state()

    def step():  # draws noise and moves batch-norm statistics
        model.log_weights(x, 2).log_w.sum().backward()

    grads = side_effect_free(model, step)()
    assert len(grads) == len(list(model.parameters()))  # what the step computed, for comparing counts
    assert torch.equal(torch.get_rng_state(), rng)
    assert all(torch.equal(v, buffers[k]) for k, v in model.named_buffers())
    assert all(p.grad is None for p in model.parameters())


def _config(threads: int) -> RunConfig:
    return RunConfig.from_dict({
        "model": {"arch": "conv", "latent": 3},  # batch norm, and rounding that depends on threads
        "train": {"epochs": 1, "batch_size": 20, "seed": 5, "device": "cpu", "threads": threads},
    })


def test_a_probed_run_trains_as_a_run_told_its_thread_count(tmp_path, monkeypatch):
    monkeypatch.delenv(MAX_THREADS_ENV, raising=False)
    monkeypatch.setattr(loop, "PROBE_MIN_STEPS", 1)
    ds = tiny_dataset(100)
    probed = Trainer.open(_config(0), tmp_path / "probed", progress=False).build(dataset=ds)
    chosen = probed.threads
    assert chosen in candidates(2)
    probed.fit()
    assert probed.state.metrics[-1]["threads"] == chosen
    told = Trainer.open(_config(chosen), tmp_path / "told", progress=False).build(dataset=ds)
    told.fit()
    for (name, a), b in zip(probed.model.state_dict().items(), told.model.state_dict().values()):
        assert torch.equal(a, b), name


def test_no_probe_where_the_count_is_given_or_decided_elsewhere(tmp_path, monkeypatch):
    monkeypatch.setattr(loop, "PROBE_MIN_STEPS", 1)
    monkeypatch.setattr(loop, "probe", lambda *a, **k: pytest.fail("probed"))
    ds = tiny_dataset(100)
    torch.set_num_threads(2)
    assert Trainer.open(_config(1), tmp_path / "a", progress=False).build(dataset=ds).threads == 1
    monkeypatch.setenv(MAX_THREADS_ENV, "2")  # a sweep's worker: its own count stays
    torch.set_num_threads(2)
    assert Trainer.open(_config(0), tmp_path / "b", progress=False).build(dataset=ds).threads == 2


def test_a_resumed_run_keeps_its_recorded_count(tmp_path, monkeypatch):
    monkeypatch.delenv(MAX_THREADS_ENV, raising=False)
    monkeypatch.setattr(loop, "PROBE_MIN_STEPS", 1)
    monkeypatch.setattr(loop, "probe", lambda step, counts: Probe(1, {1: 0.0}, invariant=False))
    ds = tiny_dataset(100)
    torch.set_num_threads(2)
    first = Trainer.open(_config(0), tmp_path / "run", progress=False).build(dataset=ds)
    first.fit()
    assert first.state.metrics[-1]["threads"] == 1
    monkeypatch.setattr(loop, "probe", lambda *a, **k: pytest.fail("probed again"))
    torch.set_num_threads(2)
    again = Trainer.open(_config(0).replace(**{"train.epochs": 2}), tmp_path / "run", resume=True,
                         progress=False).build(dataset=ds)
    assert again.threads == 1 and torch.get_num_threads() == 1


@pytest.mark.parametrize("invariant,long_epochs,probes", [(True, True, 3), (False, True, 1), (True, False, 1)])
def test_measured_again_each_epoch_only_where_the_count_cannot_change_the_run(tmp_path, monkeypatch, invariant,
                                                                                long_epochs, probes):
    monkeypatch.delenv(MAX_THREADS_ENV, raising=False)
    monkeypatch.setattr(loop, "PROBE_MIN_STEPS", 1)
    monkeypatch.setattr(loop, "REPROBE_MIN_STEPS", 1 if long_epochs else 10)  # an epoch here is 5 steps
    calls = []

    def fake(step, counts):
        calls.append(1)
        best = 1 if len(calls) % 2 else 2  # the machine's load changes between epochs
        torch.set_num_threads(best)
        return Probe(best, {best: 0.0}, invariant)

    monkeypatch.setattr(loop, "probe", fake)
    torch.set_num_threads(2)
    tr = Trainer.open(_config(0).replace(**{"train.epochs": 3}), tmp_path / "run", progress=False)
    tr.build(dataset=tiny_dataset(100)).fit()
    assert len(calls) == probes
    used = [row["threads"] for row in tr.state.metrics]
    assert used == ([1, 2, 1] if probes == 3 else [1, 1, 1])
