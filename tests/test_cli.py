"""The CLI's contract: one clear line and exit code 2 for every user error, nothing
half-written; `eval --json` prints the public field names."""

import gzip
import json
import shutil

import pytest

from vaelab.cli import main

TINY = ["--latent", "3", "--hidden", "16", "--epochs", "1", "--set", "data.train_limit=500",
        "--set", "data.test_limit=100", "--quiet"]


def one_line_error(capsys):
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("vaelab: error: ")
    return err[0]


def test_unknown_config_key_names_the_key(tmp_path, capsys):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("model:\n  latnt: 3\n")
    assert main(["train", str(cfg), "--out", str(tmp_path / "run")]) == 2
    line = one_line_error(capsys)
    assert "model.latnt" in line
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("flags, key", [
    (["--latent", "0"], "model.latent"),
    (["--lr", "-1"], "optim.lr"),
    (["--binarize", "sometimes"], "data.binarize"),
    (["--set", "objective.beta=many"], "objective.beta"),
    (["--set", "train.epochs=2.5"], "train.epochs"),
])
def test_impossible_values_name_the_key(tmp_path, capsys, flags, key):
    assert main(["train", *flags, "--out", str(tmp_path / "run")]) == 2
    assert key in one_line_error(capsys)
    assert not (tmp_path / "run").exists()


def test_unknown_model_preset_lists_known_ones(tmp_path, capsys):
    assert main(["train", "--model", "nope", "--out", str(tmp_path / "run")]) == 2
    line = one_line_error(capsys)
    assert "nope" in line and "vae" in line


def test_config_file_that_is_not_yaml(tmp_path, capsys):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("model: [unclosed\n")
    assert main(["train", str(cfg)]) == 2
    assert "not valid YAML" in one_line_error(capsys)


def test_missing_data_directory(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("VAELAB_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("VAELAB_OFFLINE", "1")
    missing = tmp_path / "nowhere"
    assert main(["train", *TINY, "--data-dir", str(missing), "--out", str(tmp_path / "run")]) == 2
    line = one_line_error(capsys)
    assert str(missing) in line and "--data-dir" in line
    assert not (tmp_path / "run").exists()


def test_truncated_mnist_pickle(tmp_path, capsys, monkeypatch, data_dir):
    monkeypatch.setenv("VAELAB_OFFLINE", "1")
    bad = tmp_path / "data"
    bad.mkdir()
    (bad / "mnist.pkl.gz").write_bytes((data_dir / "mnist.pkl.gz").read_bytes()[:1_000_000])
    assert main(["train", *TINY, "--data-dir", str(bad), "--out", str(tmp_path / "run")]) == 2
    line = one_line_error(capsys)
    assert "mnist.pkl.gz" in line and "checksum" in line
    assert not (tmp_path / "run").exists()


def test_train_eval_sample_reconstruct_and_json_fields(tmp_path, capsys, data_dir):
    run = tmp_path / "run"
    assert main(["train", *TINY, "--data-dir", str(data_dir), "--out", str(run)]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["epochs"] == 1
    assert main(["eval", str(run), "--k", "20", "--limit", "50", "--json", "--data-dir", str(data_dir)]) == 0
    out = json.loads(capsys.readouterr().out)
    for field in ("elbo", "log_likelihood", "k"):
        assert field in out
    assert out["k"] == 20
    assert out["elbo"] < out["log_likelihood"] < 0  # a bound below the estimate, both negative
    assert (run / "eval.json").exists()
    png = tmp_path / "s.png"
    assert main(["sample", str(run), "--n", "16", "-o", str(png)]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    png = tmp_path / "r.png"
    assert main(["reconstruct", str(run), "-o", str(png), "--data-dir", str(data_dir)]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # Training into an existing run without --resume is refused, and the run is untouched.
    before = (run / "metrics.jsonl").read_text()
    capsys.readouterr()
    assert main(["train", *TINY, "--data-dir", str(data_dir), "--out", str(run)]) == 2
    assert "--resume" in one_line_error(capsys)
    assert (run / "metrics.jsonl").read_text() == before


def test_run_directory_from_another_version(tmp_path, capsys, data_dir):
    run = tmp_path / "run"
    assert main(["train", *TINY, "--data-dir", str(data_dir), "--out", str(run)]) == 0
    meta = json.loads((run / "config.json").read_text())
    meta["format"] = 0
    meta["vaelab_version"] = "0.0.1"
    (run / "config.json").write_text(json.dumps(meta))
    capsys.readouterr()
    assert main(["eval", str(run), "--k", "5"]) == 2
    line = one_line_error(capsys)
    assert "0.0.1" in line


def test_eval_of_a_directory_that_is_not_a_run(tmp_path, capsys):
    assert main(["eval", str(tmp_path)]) == 2
    assert "not a vaelab run directory" in one_line_error(capsys)


def test_models_lists_presets(capsys):
    assert main(["models"]) == 0
    names = [line.split()[0] for line in capsys.readouterr().out.strip().splitlines()]
    assert "vae" in names


def test_latent_larger_than_memory_is_refused_before_allocating(tmp_path, capsys, data_dir):
    assert main(["train", *TINY, "--latent", "2000000000", "--data-dir", str(data_dir),
                 "--out", str(tmp_path / "run")]) == 2
    assert "GiB" in one_line_error(capsys)
    assert not (tmp_path / "run").exists()
