"""The CLI's contract: one clear line and exit code 2 for every user error, nothing
half-written; `eval --json` prints the public field names."""

import json
import shutil
import subprocess
import sys
import time

import pytest

from vaelab.cli import SHIPPED, build_parser, main
from vaelab.efforts import EFFORTS
from vaelab.sweep import experiment_names
from vaelab.version import __version__

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
    # a look at another k or subset has its own record; eval.json stays the run's protocol
    assert (run / "eval-k20-n50.json").exists() and not (run / "eval.json").exists()
    # the run was trained with data.test_limit=100: --all-test evaluates every test image, and
    # its first 100 are the run's own, binarised alike (the same test tensor's sha256)
    def look(*flags):
        assert main(["eval", str(run), "--k", "2", *flags, "--json", "--data-dir", str(data_dir)]) == 0
        return json.loads(capsys.readouterr().out)
    assert look("--all-test", "--limit", "150")["n"] == 150 and (run / "eval-k2-n150.json").exists()
    assert look("--limit", "150")["n"] == 100  # without it, the run's own 100
    assert look("--all-test", "--limit", "100")["test_sha256"] == look()["test_sha256"]
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


def test_python_dash_m_is_the_same_command():
    out = subprocess.run([sys.executable, "-m", "vaelab", "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == f"vaelab {__version__}"
    out = subprocess.run([sys.executable, "-m", "vaelab", "models"], capture_output=True, text=True, check=True)
    assert "vae-tuned" in out.stdout


def test_start_up_is_cheap():
    """`vaelab --version` and `--help` answer without loading torch, plotting or YAML
    (tests/test_architecture.py checks the imports; this checks the clock, with room for a
    busy machine: best of three)."""
    def best(*args: str) -> float:
        times = []
        for _ in range(3):
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-m", "vaelab", *args], capture_output=True, check=True)
            times.append(time.perf_counter() - t0)
        return min(times)

    assert best("--version") < 0.5
    assert best("--help") < 1.0


def test_help_lists_what_the_code_knows():
    """Effort and experiment names in the help come from where they are defined."""
    assert sorted(SHIPPED) == experiment_names()
    sweep_help = " ".join(build_parser()._subparsers._group_actions[0].choices["sweep"].format_help().split())
    for effort in EFFORTS:
        assert f"{effort}:" in sweep_help
    assert all(name in sweep_help for name in SHIPPED)


def test_latent_larger_than_memory_is_refused_before_allocating(tmp_path, capsys, data_dir):
    assert main(["train", *TINY, "--latent", "2000000000", "--data-dir", str(data_dir),
                 "--out", str(tmp_path / "run")]) == 2
    assert "GiB" in one_line_error(capsys)
    assert not (tmp_path / "run").exists()


# --- every bad argument: one line and exit 2 --------------------------------------------


@pytest.fixture(scope="module")
def tiny_runs(tmp_path_factory, data_dir):
    """A trained tiny VAE and a tiny CVAE (one epoch each), shared by the tests below."""
    root = tmp_path_factory.mktemp("cli-runs")
    runs = {}
    for name in ("vae", "cvae"):
        runs[name] = root / name
        assert main(["train", *TINY, "--model", name, "--data-dir", str(data_dir), "--out", str(runs[name])]) == 0
    return runs


@pytest.mark.parametrize("flags, words", [
    (["--k", "0"], ["--k", "between 1"]),
    (["--k", "-3"], ["--k", "-3"]),
    (["--limit", "0"], ["--limit", ">= 1"]),
    (["--limit", "-5"], ["--limit"]),
    (["--device", "gpu7"], ["device", "gpu7"]),
])
def test_eval_bad_arguments_are_one_line(tiny_runs, capsys, data_dir, flags, words):
    capsys.readouterr()
    assert main(["eval", str(tiny_runs["vae"]), *flags, "--data-dir", str(data_dir)]) == 2
    line = one_line_error(capsys)
    assert all(w in line for w in words), line
    assert not (tiny_runs["vae"] / "eval.json").exists()


def test_eval_announces_its_cost_up_front(tiny_runs, capsys, data_dir, monkeypatch):
    from vaelab.evaluation import run as eval_run

    real = eval_run.estimate_seconds
    seen = []
    monkeypatch.setattr(eval_run, "estimate_seconds", lambda *a, **kw: seen.append(real(*a, **kw)) or 7200.0)
    capsys.readouterr()
    assert main(["eval", str(tiny_runs["vae"]), "--k", "5", "--limit", "20", "--json",
                 "--data-dir", str(data_dir)]) == 0
    err = capsys.readouterr().err
    assert "about 2.0 h for 20 test images at k=5" in err and "--k 100 --limit 1000" in err
    assert seen and 0 < seen[0] < 60  # the real estimate from the first chunk of 20 tiny images


def test_eval_help_documents_a_quick_look(capsys):
    with pytest.raises(SystemExit):
        main(["eval", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "--k 100" in out and "--limit 1000" in out and "hours" in out


def test_sample_label_out_of_range_names_the_classes(tiny_runs, capsys, tmp_path):
    out = tmp_path / "s.png"
    capsys.readouterr()
    assert main(["sample", str(tiny_runs["cvae"]), "--label", "11", "-o", str(out)]) == 2
    line = one_line_error(capsys)
    assert "0..9" in line and "11" in line
    assert not out.exists()
    assert main(["sample", str(tiny_runs["cvae"]), "--label", "3", "--n", "10", "-o", str(out)]) == 0


@pytest.mark.parametrize("name, magic", [("s.jpg", b"\xff\xd8\xff"), ("s.JPEG", b"\xff\xd8\xff"),
                                         ("s.pdf", b"%PDF"), ("s.png", b"\x89PNG")])
def test_sample_writes_the_format_its_name_asks_for(tiny_runs, tmp_path, name, magic):
    out = tmp_path / name
    assert main(["sample", str(tiny_runs["vae"]), "--n", "9", "-o", str(out)]) == 0
    assert out.read_bytes().startswith(magic)


@pytest.mark.parametrize("name", ["s.xyz", "samples"])
def test_sample_refuses_a_format_it_cannot_write(tiny_runs, tmp_path, capsys, name):
    out = tmp_path / name
    capsys.readouterr()
    assert main(["sample", str(tiny_runs["vae"]), "-o", str(out)]) == 2
    assert ".png" in one_line_error(capsys)
    assert not out.exists()


def test_train_on_a_device_torch_does_not_have(tmp_path, capsys, data_dir):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this torch has CUDA; the test is for a CPU-only build")
    assert main(["train", *TINY, "--device", "cuda", "--data-dir", str(data_dir), "--out", str(tmp_path / "r")]) == 2
    line = one_line_error(capsys)
    assert "cuda" in line and "--device cpu" in line
    assert not (tmp_path / "r").exists()


def test_resume_without_out_asks_what_to_resume(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--resume", "--model", "vae"]) == 2
    line = one_line_error(capsys)
    assert "which one" in line and "--out" in line
    assert not (tmp_path / "runs").exists()


def test_resume_of_an_empty_directory_says_it_starts_a_run(tmp_path, capsys, data_dir):
    run = tmp_path / "new"
    assert main(["train", *TINY, "--resume", "--data-dir", str(data_dir), "--out", str(run)]) == 0
    assert f"{run} holds no run yet; starting one there" in capsys.readouterr().err
    assert (run / "config.json").exists()


def test_resume_says_from_which_epoch(tiny_runs, tmp_path, capsys, data_dir):
    run = tmp_path / "run"
    shutil.copytree(tiny_runs["vae"], run)
    capsys.readouterr()
    assert main(["train", "--resume", "--out", str(run), "--epochs", "2", "--data-dir", str(data_dir)]) == 0
    captured = capsys.readouterr()
    assert f"resuming {run} from epoch 1 of 2" in captured.err
    assert json.loads(captured.out.strip().splitlines()[-1])["epochs"] == 2


def test_train_without_a_preset_is_not_recorded_as_one(tmp_path, capsys, data_dir):
    """`--dataset frey` alone trains with the global defaults, not the `vae` preset."""
    run = tmp_path / "run"
    assert main(["train", "--dataset", "frey", "--latent", "2", "--hidden", "16", "--epochs", "1", "--quiet",
                 "--data-dir", str(data_dir), "--out", str(run)]) == 0
    cfg = json.loads((run / "config.json").read_text())["config"]
    assert cfg["name"] == "custom" and cfg["optim"]["name"] == "adam"
    run2 = tmp_path / "run2"
    assert main(["train", "--model", "vae", "--dataset", "frey", "--latent", "2", "--hidden", "16", "--epochs", "1",
                 "--quiet", "--data-dir", str(data_dir), "--out", str(run2)]) == 0
    cfg = json.loads((run2 / "config.json").read_text())["config"]
    assert cfg["name"] == "vae" and cfg["optim"]["name"] == "adagrad"


def test_interrupted_eval_gives_a_true_hint(tiny_runs, capsys, monkeypatch):
    import vaelab.evaluation.run

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(vaelab.evaluation.run, "evaluate_run", interrupted)
    assert main(["eval", str(tiny_runs["vae"]), "--k", "5"]) == 130
    err = capsys.readouterr().err
    assert "interrupted" in err and "--resume" not in err and "run it again" in err


def test_interrupted_train_names_the_run_to_resume(tmp_path, capsys, monkeypatch):
    import vaelab.api

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(vaelab.api, "train_run", interrupted)
    assert main(["train", "--out", str(tmp_path / "r")]) == 130
    assert f"vaelab train --resume --out {tmp_path / 'r'}" in capsys.readouterr().err


def test_disk_full_during_a_checkpoint(tiny_runs, tmp_path, capsys, data_dir, monkeypatch):
    """One line naming the directory, the space and --resume; then a resume after freeing
    space finishes the run."""
    import errno

    from vaelab.runs import checkpoint

    run = tmp_path / "run"
    shutil.copytree(tiny_runs["vae"], run)
    real = checkpoint.save_file

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(checkpoint, "save_file", full)
    capsys.readouterr()
    assert main(["train", "--resume", "--out", str(run), "--epochs", "2", "--quiet", "--data-dir", str(data_dir)]) == 2
    line = one_line_error(capsys)
    assert "no space left" in line and str(run / "checkpoints") in line and "MiB" in line
    assert f"--resume --out {run}" in line
    assert not list((run / "checkpoints").glob(".*.tmp"))  # no half-written file left
    monkeypatch.setattr(checkpoint, "save_file", real)
    assert main(["train", "--resume", "--out", str(run), "--epochs", "2", "--quiet", "--data-dir", str(data_dir)]) == 0
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 2


def test_written_files_have_normal_permissions(tiny_runs):
    import stat

    for f in (tiny_runs["vae"] / "config.json", tiny_runs["vae"] / "metrics.jsonl"):
        assert stat.S_IMODE(f.stat().st_mode) & 0o044 == 0o044, oct(f.stat().st_mode)


def test_eval_of_one_image_has_no_standard_error_and_no_traceback(tiny_runs, capsys, data_dir):
    """Found by the CLI property tests: --limit 1 made a NaN standard error that JSON refused."""
    assert main(["eval", str(tiny_runs["vae"]), "--k", "3", "--limit", "1", "--json", "--data-dir", str(data_dir)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["n"] == 1 and out["log_likelihood_sem"] is None
    record = tiny_runs["vae"] / "eval-k3-n1.json"
    assert json.loads(record.read_text())["log_likelihood_sem"] is None
    record.unlink()
