"""The Ray executor: a tiny sweep on a local Ray instance started by the test, and the
clear error when Ray is not installed."""

import sys

import pytest

from vaelab.errors import ConfigError
from vaelab.store import Store
from vaelab.sweep import load_experiment, run_sweep


def test_missing_ray_is_a_clear_config_error(write_experiment, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now raises ImportError
    exp = load_experiment(write_experiment(runs="{sweep: {model.latent: [2]}}"), "smoke")
    with pytest.raises(ConfigError, match=r"pip install 'vaelab\[ray\]'"):
        run_sweep([exp], tmp_path / "sweep", executor="ray", progress=False)


@pytest.mark.ray
@pytest.mark.slow
def test_sweep_on_a_local_ray_instance(write_experiment, tmp_path, data_dir):
    ray = pytest.importorskip("ray")
    exp = load_experiment(write_experiment(runs="{sweep: {model.latent: [2, 3, 4]}}"), "smoke")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        result = run_sweep([exp], tmp_path / "sweep", executor="ray", data_dir=data_dir, progress=False)
        # Again on the same cluster: everything is done already, nothing is submitted.
        again = run_sweep([exp], tmp_path / "sweep", executor="ray", data_dir=data_dir, progress=False)
    finally:
        ray.shutdown()
    assert result.ok and (result.done, result.total) == (3, 3), result.summary()
    assert again.ok and again.done == 3
    with Store(tmp_path / "sweep" / "store.sqlite") as store:
        rows = store.runs()
        assert len(rows) == 3 and all(r.status == "done" and r.attempts == 1 for r in rows)
        assert all(r.worker and r.worker.count(":") == 2 for r in rows)  # the task's own process
        assert all(r.metrics["k"] == 5 and r.metrics["elbo"] < 0 for r in rows)
    for r in rows:
        assert (tmp_path / "sweep" / "runs" / r.id / "eval.json").exists()
