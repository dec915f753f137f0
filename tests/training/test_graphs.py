"""train.cuda_graph: a captured step is the eager step, replayed.

On the CPU the key must change nothing (and at its default, on, it is not part of the run id).  On CUDA (run on a lent GPU
machine; skipped elsewhere) the replayed forward + backward must give the eager step's loss
and gradients from the same seed, for every model family, since a replay draws the same
random numbers from the same generator state, and a short run must end where the eager
run ends."""

import pytest
import torch

from vaelab.config import load_config
from vaelab.data import load_dataset
from vaelab.models import build_model
from vaelab.objectives import build_objective
from vaelab.sweep.experiment import run_id
from vaelab.training import train_run
from vaelab.training.graphs import GraphedStep
from vaelab.training.loop import _step_terms

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def test_the_key_is_inert_on_the_cpu_and_absent_from_the_run_id(tmp_path, data_dir):
    base = {"model.latent": 5, "model.hidden": [64], "data.train_limit": 300, "data.test_limit": 100,
            "train.epochs": 1, "train.threads": 1, "train.device": "cpu", "train.seed": 3}
    on = load_config(preset="vae", overrides=base)  # the default
    off = load_config(preset="vae", overrides={**base, "train.cuda_graph": False})
    assert on.train.cuda_graph and "cuda_graph" not in on.to_dict()["train"]
    assert run_id(off) != run_id(on)
    a = train_run(off, tmp_path / "a", data_dir, progress=False)
    b = train_run(on, tmp_path / "b", data_dir, progress=False)
    assert a.metrics[-1]["valid_elbo"] == b.metrics[-1]["valid_elbo"]


@cuda
@pytest.mark.parametrize("preset", ["vae", "vae-tuned", "vae-cnn", "iwae", "dvae", "cvae", "vampprior", "hvae"])
def test_a_replayed_step_is_the_eager_step(preset, data_dir):
    cfg = load_config(preset=preset, overrides={"model.latent": 5, "data.train_limit": 200, "data.test_limit": 100,
                                                "data.binarize": "seed-paper"})
    ds = load_dataset(cfg.data, data_dir)
    dev = torch.device("cuda")
    torch.manual_seed(0)
    model = build_model(cfg.model, ds.info).to(dev)
    objective = build_objective(cfg.objective)
    x = ds.train.x[:100].to(dev)
    y = ds.train.y[:100].to(dev) if model.cond_dim > 0 else None

    def eager(seed):
        torch.manual_seed(seed)
        model.zero_grad(set_to_none=True)
        loss, obj, elbo = _step_terms(model, objective, x, y)
        loss.backward()
        return loss.item(), [p.grad.clone() for p in model.parameters()]

    loss_e, grads_e = eager(11)
    graphed = GraphedStep(_step_terms, model, objective, x, y)
    torch.manual_seed(11)
    first = graphed(x, y)[0].item()  # the graph's static output: read it before the next replay
    assert first == pytest.approx(loss_e, rel=1e-5)
    # gradients to float32 rounding, measured against the largest gradient of the model (a
    # bias feeding a batch norm has a gradient that is zero up to rounding)
    scale = max(float(g.abs().max()) for g in grads_e)
    for ge, p in zip(grads_e, model.parameters()):
        assert float((p.grad - ge).abs().max()) <= 1e-4 * scale
    # replays from other seeds draw other numbers (the graph does not freeze them); the same
    # seed draws the same ones again
    torch.manual_seed(12)
    other = graphed(x, y)[0].item()
    torch.manual_seed(11)
    again = graphed(x, y)[0].item()
    assert other != first
    assert again == first


@cuda
def test_a_graphed_run_ends_where_the_eager_run_ends(tmp_path, data_dir):
    base = {"model.latent": 5, "data.train_limit": 2000, "data.test_limit": 100, "train.epochs": 2,
            "train.device": "cuda", "train.seed": 3}
    a = train_run(load_config(preset="vae-tuned", overrides={**base, "train.cuda_graph": False}), tmp_path / "a",
                  data_dir, progress=False)
    b = train_run(load_config(preset="vae-tuned", overrides={**base, "train.cuda_graph": True}), tmp_path / "b",
                  data_dir, progress=False)
    for ra, rb in zip(a.metrics, b.metrics):
        assert rb["train_elbo"] == pytest.approx(ra["train_elbo"], abs=0.05)
        assert rb["valid_elbo"] == pytest.approx(ra["valid_elbo"], abs=0.05)
