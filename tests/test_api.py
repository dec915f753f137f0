"""vaelab as a toolkit: the Python API, a user's own data (an .npz file, an image folder)
through training, evaluation, sweeps and reports, parts registered from a notebook, and
model bundles that work without their run directory.  Every reload of a run checks that
its data are the ones it was trained on."""

from __future__ import annotations

import csv
import json
import shutil
import textwrap

import numpy as np
import pytest
import torch
from PIL import Image

import vaelab
from vaelab.cli import main
from vaelab.config import DataConfig, load_config
from vaelab.data import Dataset, Split, load_dataset
from vaelab.distributions import StandardNormalPrior
from vaelab.errors import ConfigError, DataError
from vaelab.registry import SESSION
from vaelab.training import train_run

SHAPE = (14, 12)  # not 28x28, and not square


def shrink(x: torch.Tensor) -> np.ndarray:
    """MNIST (N, 784) grey -> (N, 14, 12) uint8: the middle 24 columns, 2x2 average pooling."""
    img = x.reshape(-1, 1, 28, 28)[..., 2:26]
    return (torch.nn.functional.avg_pool2d(img, 2)[:, 0] * 255).round().to(torch.uint8).numpy()


@pytest.fixture(scope="module")
def small_mnist(tmp_path_factory, data_dir):
    """An .npz of 2000 training and 300 test digits at 14x12, with labels, no validation split."""
    ds = load_dataset(DataConfig(binarize="dynamic", train_limit=2000, test_limit=300), data_dir)
    path = tmp_path_factory.mktemp("own") / "digits14x12.npz"
    np.savez(path, x_train=shrink(ds.train.x), y_train=ds.train.y.numpy(),
             x_test=shrink(ds.test.x), y_test=ds.test.y.numpy())
    return path


@pytest.fixture(scope="module")
def digit_folder(tmp_path_factory, small_mnist):
    """300 training and 60 test digits 0-2 as PNG files in train/ and test/, one subfolder per class."""
    root = tmp_path_factory.mktemp("own") / "digits"
    with np.load(small_mnist) as npz:
        for split in ("train", "test"):
            x, y = npz[f"x_{split}"], npz[f"y_{split}"]
            for i in np.flatnonzero(y < 3)[:300 if split == "train" else 60]:
                folder = root / split / f"digit{y[i]}"
                folder.mkdir(parents=True, exist_ok=True)
                Image.fromarray(x[i]).save(folder / f"{i}.png")
    return root


TINY = {"train.epochs": 1, "model.latent": 3, "model.hidden": [64], "train.threads": 1}


def test_npz_of_another_shape_trains_evaluates_and_reconstructs(small_mnist, tmp_path, capsys):
    run = vaelab.train("vae-tuned", data=small_mnist, out=tmp_path / "run", overrides={**TINY, "train.epochs": 2},
                       progress=False)
    raw = json.loads((run.path / "config.json").read_text())
    assert raw["data_info"]["image_shape"] == [1, *SHAPE] and raw["data"]["format"] == "npz"
    assert raw["data"]["sha256"] and raw["data"]["test_images"] == 300
    assert raw["config"]["data"]["dataset"] == str(small_mnist)
    numbers = vaelab.evaluate(run, k=20)
    # one pass of the same k samples gives both numbers: log-mean-exp >= mean (Jensen), exactly
    assert numbers["n"] == 300 and numbers["log_likelihood"] >= numbers["elbo"]
    # grey data under auto is Gaussian: a density on [0, 1]-valued pixels, not a Bernoulli ELBO
    assert raw["architecture"]["likelihood"]["name"] == "gaussian" and "binarisation" not in numbers["protocol"]
    assert main(["reconstruct", str(run), "--n", "4", "-o", str(tmp_path / "r.png")]) == 0
    assert vaelab.reconstruct(run, n=4).shape == (8, 1, *SHAPE)
    conv = vaelab.train("vae-cnn", data=small_mnist, out=tmp_path / "conv", progress=False,
                        overrides={"train.epochs": 1, "model.latent": 3, "model.likelihood": "bernoulli"})
    assert json.loads((conv.path / "config.json").read_text())["architecture"]["likelihood"]["name"] == "bernoulli"
    assert vaelab.sample(conv, n=3).shape == (3, 1, *SHAPE)


@pytest.mark.slow
def test_npz_sweep_with_two_workers_and_its_report(small_mnist, tmp_path, capsys):
    exp = tmp_path / "own.yaml"
    exp.write_text(textwrap.dedent(f"""\
        name: own
        base: {{preset: vae-tuned, data.dataset: "{small_mnist}", model.likelihood: bernoulli,
                model.hidden: [64]}}
        runs: {{sweep: {{model.latent: [2, 4]}}}}
        efforts:
          smoke: {{train.epochs: 1, eval.k: 10}}
        report:
          title: My digits
          tables:
            - {{name: own, rows: {{key: name}}, columns: {{key: model.latent}}}}
          figures:
            - {{name: own-samples, kind: samples, select: {{}}}}
        """))
    sweep = tmp_path / "sweep"
    assert main(["sweep", str(exp), "--effort", "smoke", "--workers", "2", "--out", str(sweep), "--quiet"]) == 0
    assert main(["report", "--sweep", str(sweep), "--quiet"]) == 0
    rows = list(csv.DictReader(open(sweep / "report" / "own.csv")))
    assert [r["status"] for r in rows] == ["done", "done"]
    for r in rows:
        assert float(r["test_log_likelihood"]) >= float(r["test_elbo"])
    assert (sweep / "report" / "figures" / "own-samples.png").is_file()


def test_cvae_on_an_image_folder_with_class_subfolders(digit_folder, tmp_path, capsys):
    run = vaelab.train("cvae", data=digit_folder, out=tmp_path / "cvae", progress=False,
                       overrides={**TINY, "train.epochs": 3, "model.likelihood": "bernoulli"})
    raw = json.loads((run.path / "config.json").read_text())
    assert raw["data_info"]["num_classes"] == 3 and raw["data"]["classes"] == ["digit0", "digit1", "digit2"]
    numbers = vaelab.evaluate(run, k=10)
    assert numbers["conditional"] and "log p(x | y)" in numbers["protocol"] and numbers["n"] == 60
    assert vaelab.sample(run, n=6, label=2).shape == (6, 1, *SHAPE)
    assert main(["sample", str(run), "--label", "3", "-o", str(tmp_path / "s.png")]) == 2
    assert "--label must be a class 0..2" in capsys.readouterr().err


def test_changed_or_moved_data_is_refused_with_one_line(small_mnist, tmp_path, capsys):
    data = tmp_path / "mine.npz"
    shutil.copy(small_mnist, data)
    run = vaelab.train("vae-tuned", data=data, out=tmp_path / "run", overrides=TINY, progress=False)
    moved = tmp_path / "elsewhere.npz"
    data.rename(moved)
    assert main(["eval", str(run), "--k", "5"]) == 2
    assert "is missing; pass --data PATH" in capsys.readouterr().err
    assert main(["eval", str(run), "--k", "5", "--data", str(moved), "--json"]) == 0  # same bytes: accepted
    capsys.readouterr()
    with np.load(moved) as npz:
        arrays = dict(npz)
    arrays["x_test"] = 255 - arrays["x_test"]
    np.savez(moved, **arrays)
    written = sorted(p.name for p in run.path.iterdir())
    for cmd in (["eval", str(run), "--k", "5", "--data", str(moved)],
                ["reconstruct", str(run), "--data", str(moved), "-o", str(tmp_path / "r.png")]):
        assert main(cmd) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "has changed since this run was trained" in err
    assert sorted(p.name for p in run.path.iterdir()) == written and not (tmp_path / "r.png").exists()


def test_a_run_trained_on_other_images_is_not_evaluated_on_mnist(data_dir, tmp_path, capsys):
    """The model trained from Python on inverted digits under a config that says mnist: its
    evaluation must not silently score it on MNIST."""
    cfg = load_config(preset="vae-tuned", overrides={**TINY, "data.train_limit": 500, "data.test_limit": 100})
    mnist = load_dataset(cfg.data, data_dir)
    inverted = Dataset("inverted", *(Split(1 - s.x, s.y) for s in (mnist.train, mnist.valid, mnist.test)),
                       mnist.image_shape, binary=True, num_classes=10, dynamic=False)
    train_run(cfg, tmp_path / "run", dataset=inverted, progress=False)
    assert main(["eval", str(tmp_path / "run"), "--k", "5", "--data-dir", str(data_dir)]) == 2
    err = capsys.readouterr().err
    assert "are not those this run was trained with" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "run" / "eval-k5.json").exists()


def test_a_bundle_works_without_its_run_directory(small_mnist, tmp_path, capsys):
    run = vaelab.train("vae-tuned", data=small_mnist, out=tmp_path / "run", overrides=TINY, progress=False)
    own = vaelab.evaluate(run)  # the run's own protocol (k = 5000, every test image): eval.json
    assert main(["export", str(run), str(tmp_path / "bundle")]) == 0
    assert main(["export", str(run), str(tmp_path / "bundle")]) == 2  # not over a bundle
    assert "not an empty folder" in capsys.readouterr().err
    weights = vaelab.load(run).state_dict()
    shutil.rmtree(run.path)
    bundle = tmp_path / "bundle"
    assert sorted(p.name for p in bundle.iterdir()) == ["README.md", "config.json", "eval.json", "model.safetensors"]
    model = vaelab.load(bundle)
    assert isinstance(model, torch.nn.Module) and not model.training
    assert all(torch.equal(v, weights[k]) for k, v in model.state_dict().items())
    assert main(["sample", str(bundle), "--n", "9", "-o", str(tmp_path / "s.png")]) == 0
    assert (tmp_path / "s.png").stat().st_size > 0
    card = (bundle / "README.md").read_text()
    assert card.startswith("---\nlibrary_name: vaelab") and "vaelab.load" in card
    assert f"{own['log_likelihood']:.2f}" in card and "k=5000" in card  # its numbers with their protocol
    numbers = vaelab.evaluate(bundle, k=5)  # with the data still where the run recorded it
    assert numbers["n"] == 300 and [p.name for p in bundle.glob("eval*.json")] == ["eval.json"]  # never written
    (bundle / "model.safetensors").write_bytes((bundle / "model.safetensors").read_bytes()[:-8] + b"\0" * 8)
    assert main(["sample", str(bundle), "-o", str(tmp_path / "t.png")]) == 2
    assert "sha256 does not match" in capsys.readouterr().err


# --- parts from a notebook ----------------------------------------------------------------------


class ScaledNormalPrior(StandardNormalPrior):
    """N(0, s^2 I) with a learned log-scale: a prior of one's own, with a closed-form KL
    against a diagonal Gaussian posterior that it does not declare (so the KL is sampled)."""

    closed_form_kl = False

    def __init__(self, cfg, latent, x_dim):
        super().__init__(cfg, latent, x_dim)
        self.log_scale = torch.nn.Parameter(torch.zeros(()))

    def log_prob(self, z, encoder=None):
        s = self.log_scale
        return -0.5 * ((z / torch.exp(s)).pow(2).sum(-1) + z.shape[-1] * (2 * s + np.log(2 * np.pi)))

    def sample(self, n, encoder=None):
        return super().sample(n) * torch.exp(self.log_scale)

    def kl_closed_form(self, q):
        return None


def test_register_adds_a_prior_that_trains_and_evaluates(data_dir, tmp_path, capsys, monkeypatch):
    from vaelab.distributions import PRIORS

    monkeypatch.setattr(PRIORS, "_items", dict(PRIORS._items))  # leave the table as it was
    monkeypatch.setattr(PRIORS, "_origin", dict(PRIORS._origin))
    with pytest.raises(ConfigError, match="unknown prior 'scaled'"):
        vaelab.make_config("vae-tuned", overrides={"model.prior": "scaled"})
    assert vaelab.register("prior", "scaled")(ScaledNormalPrior) is ScaledNormalPrior
    assert PRIORS.origin("scaled") == SESSION
    with pytest.raises(ConfigError, match="built-in part already"):
        vaelab.register("prior", "normal", ScaledNormalPrior)
    with pytest.raises(ConfigError, match="unknown kind of part 'priors'"):
        vaelab.register("priors", "x", ScaledNormalPrior)
    over = {**TINY, "model.prior": "scaled", "data.train_limit": 1000, "data.test_limit": 100}
    cfg = vaelab.make_config("vae-tuned", overrides=over)
    assert cfg.objective.kl == "sampled"  # kl: auto asks the prior, which has no closed form
    run = vaelab.train(cfg, out=tmp_path / "run", data_dir=data_dir, progress=False)
    model = vaelab.load(run)
    assert isinstance(model.prior, ScaledNormalPrior) and float(model.prior.log_scale.detach()) != 0.0  # it learned
    numbers = vaelab.evaluate(run, k=10, data_dir=data_dir)
    assert numbers["log_likelihood"] >= numbers["elbo"]
    # a sweep's workers are new processes: a notebook's part cannot go there
    exp = tmp_path / "e.yaml"
    exp.write_text("name: e\nbase: {preset: vae-tuned, model.prior: scaled}\nruns: {sweep: {model.latent: [2]}}\n"
                   "efforts: {smoke: {train.epochs: 1}}\n")
    with pytest.raises(ConfigError, match="exist only in this Python process"):
        vaelab.run_sweep(exp, effort="smoke", out=tmp_path / "s", progress=False)
    assert not (tmp_path / "s").exists()


def test_part_options_are_checked_against_the_part(tmp_path):
    with pytest.raises(ConfigError, match="model.options.mog.*no part named 'mog'"):
        vaelab.make_config("vae", overrides={"model.options": {"mog": {"components": 3}}})
    with pytest.raises(ConfigError, match="takes no options"):
        vaelab.make_config("vae", overrides={"model.options": {"normal": {"x": 1}}})


def test_make_config_takes_every_spelling(tmp_path):
    by_name = vaelab.make_config("cvae", data="frey", overrides={"model.latent": 2})
    path = tmp_path / "c.yaml"
    path.write_text("preset: cvae\nmodel: {latent: 2}\ndata: {dataset: frey}\n")
    assert vaelab.make_config(path) == by_name
    assert vaelab.make_config({"preset": "cvae", "model": {"latent": 2}, "data": {"dataset": "frey"}}) == by_name
    assert vaelab.make_config(by_name) == by_name and by_name.model.init != "auto"  # resolved
    with pytest.raises(ConfigError, match="did you mean 'cvae'"):
        vaelab.make_config("cvea")
    with pytest.raises(ConfigError, match="give the dataset once"):
        vaelab.make_config("vae", data="mnist", overrides={"data.dataset": "frey"})
    with pytest.raises(DataError, match="no such file or folder"):
        vaelab.make_config("vae", data=tmp_path / "nothing.npz")
