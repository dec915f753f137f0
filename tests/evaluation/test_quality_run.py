"""`vaelab quality` on run directories: the JSON keys, the record kept in the run directory
with its protocol, repeatability, bundles, a dataset without labels (an autoencoder's
features), and one-line errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

import vaelab
from vaelab.cli import main
from vaelab.evaluation.quality import DEFAULT_N, K

pytestmark = pytest.mark.slow  # tiny trainings, and the MNIST classifier on its first use

TINY = {"model.hidden": [32], "train.epochs": 1, "data.train_limit": 300, "data.test_limit": 120,
        "data.binarize": "seed-paper"}
KEYS = {"fd", "precision", "recall", "classifier_accuracy", "label_accuracy"}


@pytest.fixture(scope="module")
def runs(tmp_path_factory, data_dir):
    root = tmp_path_factory.mktemp("quality")
    out = {}
    for name in ("vae", "cvae"):
        out[name] = vaelab.train(name, data="mnist", out=root / name, overrides={**TINY, "model.latent": 2},
                                 data_dir=data_dir, progress=False)
    return out


def test_json_keys_and_the_record_in_the_run_directory(runs, capsys, data_dir):
    assert main(["quality", str(runs["vae"]), "--json", "--data-dir", str(data_dir)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert KEYS <= set(out)
    assert out["label_accuracy"] is None  # not a conditional model
    assert out["classifier_accuracy"] >= 0.98
    assert out["n"] == 120 and out["k"] == K  # capped at the run's 120 test images
    assert out["fd"] > 0 and 0 <= out["precision"] <= 1 and 0 <= out["recall"] <= 1
    assert out["fd_reconstruction"] > 0
    assert len(out["feature_net"]["sha256"]) == 64 and out["feature_net"]["kind"] == "classifier"
    assert "Heusel" in out["protocol"] and "k=3" in out["protocol"]
    kept = json.loads((runs["vae"].path / "quality.json").read_text())
    assert kept == out


def test_the_score_repeats_exactly_and_other_protocols_keep_their_own_file(runs, data_dir):
    a = vaelab.quality(runs["vae"], data_dir=data_dir)
    b = vaelab.quality(runs["vae"], data_dir=data_dir, write=False)
    assert {k: a[k] for k in KEYS} == {k: b[k] for k in KEYS}
    c = vaelab.quality(runs["vae"], 50, data_dir=data_dir)
    assert c["n"] == 50 and (runs["vae"].path / "quality-n50.json").is_file()
    assert json.loads((runs["vae"].path / "quality.json").read_text())["n"] == 120
    assert DEFAULT_N > 120


def test_a_conditional_model_gets_a_label_accuracy(runs, data_dir):
    out = vaelab.quality(runs["cvae"], data_dir=data_dir)
    assert 0 <= out["label_accuracy"] <= 1
    per_class = out["label_accuracy_by_class"]
    assert set(per_class) <= {str(c) for c in range(10)} and len(per_class) >= 8
    assert "labels of those test images" in out["protocol"]


def test_a_bundle_is_scored_and_never_written_to(runs, tmp_path, data_dir):
    bundle = vaelab.export(runs["vae"], tmp_path / "bundle")
    before = sorted(p.name for p in bundle.iterdir())
    out = vaelab.quality(bundle, data_dir=data_dir)
    assert out["fd"] == pytest.approx(vaelab.quality(runs["vae"], data_dir=data_dir, write=False)["fd"], rel=1e-9)
    assert sorted(p.name for p in bundle.iterdir()) == before


def test_text_output_and_one_line_errors(runs, capsys, data_dir, tmp_path):
    assert main(["quality", str(runs["cvae"]), "--data-dir", str(data_dir)]) == 0
    text = capsys.readouterr().out
    assert "Fréchet distance" in text and "label accuracy" in text
    assert main(["quality", str(runs["vae"]), "--n", "0", "--data-dir", str(data_dir)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--n" in err[0]
    assert main(["quality", str(tmp_path / "nothing")]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def test_a_dataset_without_labels_is_scored_in_an_autoencoders_features(tmp_path, monkeypatch):
    """Grey 8 x 6 images without labels: the feature network is an autoencoder (no
    classifier accuracy), trained into the cache given by XDG_CACHE_HOME."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    rng = np.random.default_rng(0)

    def images(n: int) -> np.ndarray:  # a bright bar at a random row: structure an autoencoder can learn
        x = rng.uniform(0, 0.2, size=(n, 8, 6)).astype(np.float32)
        rows = rng.integers(0, 8, size=n)
        x[np.arange(n), rows, :] = 0.9
        return x

    data = tmp_path / "bars.npz"
    np.savez(data, x_train=images(400), x_test=images(60))
    run = vaelab.train("vae", data=data, out=tmp_path / "run", overrides={"model.hidden": [16], "model.latent": 2,
                                                                       "train.epochs": 1}, progress=False)
    out = vaelab.quality(run)
    assert out["classifier_accuracy"] is None and out["label_accuracy"] is None
    assert out["feature_net"]["kind"] == "autoencoder" and out["feature_net"]["test_mse"] < 0.05
    assert out["fd"] > 0 and out["n"] == 60
    assert list((tmp_path / "cache" / "vaelab" / "features").glob("*/net.safetensors"))
