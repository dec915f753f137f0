"""What the explorer computes, without a web server: images of the right size that follow
their inputs, refused inputs, runs still training marked read-only, and nothing written."""

from __future__ import annotations

import io
import json
import shutil

import matplotlib.image
import numpy as np
import pytest

import vaelab
from vaelab.serve.explorer import Explorer, ExplorerError, NotFound, discover

pytestmark = pytest.mark.slow  # a tiny sweep is trained first (shared by tests/serve)


def pixels(png: bytes) -> np.ndarray:
    return matplotlib.image.imread(io.BytesIO(png), format="png")[..., 0]  # grey: every channel alike


def tree(path) -> dict[str, float]:
    return {str(p.relative_to(path)): p.stat().st_mtime_ns for p in path.rglob("*")}


def ids(explorer: Explorer) -> dict[str, str]:
    return {e.label.split()[0]: e.id for e in explorer.entries.values()}


def test_a_sweep_lists_its_runs_with_their_numbers(serve_sweep):
    listing = Explorer(serve_sweep).listing()
    assert sorted(r["label"] for r in listing) == ["cvae mnist z=2", "vae mnist z=2"]
    for r in listing:
        assert r["status"] == "done" and r["explorable"] and not r["read_only"]
        assert r["log_likelihood"] < 0 and r["fd"] > 0


def test_decoding_follows_the_latent(serve_sweep):
    ex = Explorer(serve_sweep)
    vae = ids(ex)["vae"]
    a, b = pixels(ex.decode(vae, [-2.0, -2.0])), pixels(ex.decode(vae, [2.0, 2.0]))
    assert a.shape == b.shape == (28, 28)
    assert np.abs(a - b).mean() > 0.01
    assert np.array_equal(a, pixels(ex.decode(vae, [-2.0, -2.0])))  # decoding is deterministic
    for bad in ([0.0], [0.0, float("nan")], [0.0, 1e9]):
        with pytest.raises(ExplorerError):
            ex.decode(vae, bad)
    with pytest.raises(NotFound):
        ex.decode("../../etc", [0.0, 0.0])


def test_class_samples_follow_the_label(serve_sweep):
    ex = Explorer(serve_sweep)
    cvae = ids(ex)["cvae"]
    ones, sevens = pixels(ex.samples(cvae, 16, 1)), pixels(ex.samples(cvae, 16, 7))
    assert ones.shape == (2 * 29 + 1, 8 * 29 + 1)  # 16 images, 8 a row, 1 pixel apart
    assert np.abs(ones - sevens).mean() > 0.01
    assert np.array_equal(ones, pixels(ex.samples(cvae, 16, 1)))  # seeded
    for y in (-1, 10):
        with pytest.raises(ExplorerError):
            ex.samples(cvae, 16, y)
    with pytest.raises(ExplorerError):
        ex.samples(cvae, 0, 1)


def test_test_images_their_codes_and_reconstructions(serve_sweep, data_dir):
    ex = Explorer(serve_sweep, data_dir=data_dir)
    vae = ids(ex)["vae"]
    original, recon = pixels(ex.test_image(vae, 3)), pixels(ex.reconstruct_test(vae, 3))
    assert set(np.unique(original)) <= {0.0, 1.0}  # the binarised test image the model saw
    assert recon.shape == (28, 28) and np.abs(original - recon).mean() < np.abs(original - recon.mean()).mean()
    assert len(ex.encode_test(vae, 3)) == 2 and 0 <= ex.test_label(vae, 3) <= 9
    with pytest.raises(ExplorerError):
        ex.test_image(vae, 12)


def test_a_drawing_is_reconstructed(serve_sweep):
    ex = Explorer(serve_sweep)
    vae = ids(ex)["vae"]
    stroke = np.zeros((28, 28))
    stroke[4:24, 13:16] = 1.0  # a "1"
    assert pixels(ex.reconstruct_drawn(vae, stroke.ravel().tolist())).shape == (28, 28)
    for bad in ([0.5] * 10, [2.0] * 784, ["a"] * 784):
        with pytest.raises(ExplorerError):
            ex.reconstruct_drawn(vae, bad)


def test_a_run_still_training_is_read_only_and_nothing_is_written(serve_sweep, tmp_path, data_dir):
    run = tmp_path / "run"
    vae_id = ids(Explorer(serve_sweep))["vae"]
    shutil.copytree(serve_sweep / "runs" / vae_id, run)
    record = json.loads((run / "config.json").read_text())
    record["config"]["train"]["epochs"] = 50  # two of its fifty epochs done: still training
    (run / "config.json").write_text(json.dumps(record))
    before = tree(run)
    ex = Explorer(run, data_dir=data_dir)
    (entry,) = ex.listing()
    assert entry["status"] == "training" and entry["read_only"]
    info = ex.info("run")
    assert info["read_only"] and info["epoch"] == 2 and info["epochs"] == 50
    ex.decode("run", [0.0, 0.0])
    ex.samples("run")
    ex.reconstruct_test("run", 0)
    assert tree(run) == before
    record["config"]["train"]["epochs"] = 2  # it finished: the next listing says so
    (run / "config.json").write_text(json.dumps(record))
    assert ex.listing()[0]["status"] == "done" and not ex.info("run")["read_only"]


def test_a_bundle_and_what_is_not_a_run(serve_sweep, tmp_path):
    vae_id = ids(Explorer(serve_sweep))["vae"]
    bundle = vaelab.export(serve_sweep / "runs" / vae_id, tmp_path / "bundle")
    (entry,) = discover(bundle)
    assert entry.label == "vae mnist z=2" and entry.has_weights()
    with pytest.raises(ExplorerError):
        discover(tmp_path / "nothing")
