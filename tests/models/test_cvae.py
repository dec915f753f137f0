"""The CVAE (Sohn et al. 2015; the study's sec. 4.2.3): a one-hot label into both nets.
Its decoder must really use the label: changing it changes the output, and samples of a
briefly trained CVAE are recognised as the digit asked for far more often than chance."""

import pytest
import torch
import torch.nn.functional as F

from vaelab.config import ModelConfig, RunConfig
from vaelab.errors import ConfigError
from vaelab.evaluation.run import evaluate_run
from vaelab.models import DataInfo, build_model
from vaelab.models.cvae import CVAE
from vaelab.training.loop import Trainer

MNIST = DataInfo((1, 28, 28), binary=True, num_classes=10)


def small(**kw):
    torch.manual_seed(0)
    return build_model(ModelConfig(kind="cvae", hidden=(32,), latent=4, **kw), MNIST)


def test_condition_is_the_one_hot_label():
    model = small()
    assert isinstance(model, CVAE) and model.cond_dim == 10
    c = model.condition(torch.tensor([3, 0]))
    torch.testing.assert_close(c, torch.eye(10)[[3, 0]])
    assert model.double().condition(torch.tensor([1])).dtype == torch.float64


def test_needs_labels():
    with pytest.raises(ConfigError, match="labelled dataset"):
        build_model(ModelConfig(kind="cvae"), DataInfo((1, 28, 20), binary=False, num_classes=0))
    with pytest.raises(ValueError, match="needs the labels"):
        small().log_weights(torch.rand(2, 784), 1, None)


@pytest.mark.parametrize("arch", ["mlp", "conv"])
@pytest.mark.parametrize("batch", [1, 100])
def test_shapes_and_label_changes_the_decoded_image(arch, batch):
    model = small(arch=arch).eval()
    x = torch.bernoulli(torch.full((batch, 784), 0.2))
    y = torch.randint(10, (batch,))
    assert model.log_weights(x, 3, y).log_w.shape == (3, batch)
    z = torch.randn(batch, 4)
    a = model.decode_mean(z, torch.zeros(batch, dtype=torch.long))
    b = model.decode_mean(z, torch.full((batch,), 7))
    assert a.shape == (batch, 784) and (a - b).abs().max() > 1e-4
    assert model.sample(batch, y).shape == (batch, 784)


def test_label_changes_the_posterior_too():
    model = small().eval()
    x = torch.rand(3, 784)
    a = model.latent_means(x, torch.tensor([1, 1, 1]))
    b = model.latent_means(x, torch.tensor([2, 2, 2]))
    assert not torch.allclose(a, b)


def test_vampprior_cvae_just_works():
    # A combination the study never tried: the prior's pseudo-inputs carry no label.
    model = small(prior="vamp", pseudo_inputs=7)
    x, y = torch.bernoulli(torch.full((5, 784), 0.2)), torch.arange(5)
    lw = model.log_weights(x, 2, y)
    assert lw.log_w.shape == (2, 5) and torch.isfinite(lw.log_w).all()
    assert model.sample(4, y[:4]).shape == (4, 784)


@pytest.mark.slow
def test_samples_are_recognised_as_the_asked_digit(data_dir, tmp_path):
    cfg = RunConfig.from_dict({
        "name": "cvae", "data": {"train_limit": 4000, "test_limit": 1000},
        "model": {"kind": "cvae", "hidden": [128], "latent": 5, "activation": "relu"},
        "optim": {"lr": 0.005}, "train": {"epochs": 5, "batch_size": 100, "seed": 0},
    })
    trainer = Trainer.open(cfg, tmp_path / "cvae", progress=False).build(data_dir)
    trainer.fit()
    ds = trainer.ds

    # A small MLP classifier on real (grey-level) MNIST; it must work for the test to mean anything.
    torch.manual_seed(0)
    clf = torch.nn.Sequential(torch.nn.Linear(784, 64), torch.nn.ReLU(), torch.nn.Linear(64, 10))
    opt = torch.optim.Adam(clf.parameters(), lr=3e-3)
    for _ in range(3):
        perm = torch.randperm(len(ds.train.x))
        for i in range(0, len(perm), 50):
            idx = perm[i:i + 50]
            loss = F.cross_entropy(clf(ds.train.x[idx]), ds.train.y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    with torch.no_grad():
        clf_acc = float((clf(ds.test.x).argmax(1) == ds.test.y).float().mean())
    assert clf_acc > 0.85, clf_acc

    model = trainer.model.eval()
    asked = torch.arange(10).repeat_interleave(100)  # 100 samples per digit
    torch.manual_seed(1)
    with torch.no_grad():
        hit = float((clf(model.sample(1000, asked)).argmax(1) == asked).float().mean())
    # Chance: if the decoder ignored the label, the classifier's answer would not depend
    # on the digit asked for, and the hit rate would be exactly 10% in expectation,
    # whatever the classifier's biases.  With n = 1000 the count is then
    # Binomial(1000, 0.1) (mean 100, sd 9.5), and Hoeffding's bound gives
    # P(hit rate >= 0.4) <= exp(-2 * 1000 * 0.3^2) = exp(-180): a 40% threshold cannot be
    # reached by chance.  This budget (200 steps) gives ~70%, so the threshold is not tight either.
    assert hit >= 0.4, hit

    # and the evaluation says what it computes: log p(x | y)
    out = evaluate_run(tmp_path / "cvae", k=10, data_dir=data_dir, progress=False, limit=50)
    assert out["conditional"] and "log p(x | y)" in out["protocol"]
