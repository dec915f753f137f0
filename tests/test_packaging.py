"""The package as a user installs it: the wheel built from this tree, installed into a fresh
environment with no source tree beside it, lists its presets and trains a run from the
configs inside the wheel; and its dependencies accept other torch builds than the one pinned
for the tests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest
import torch
from packaging.requirements import Requirement
from packaging.version import Version

REPO = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow


def _run(*args: str | Path, cwd: Path, env: dict[str, str] | None = None) -> str:
    out = subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True)
    assert out.returncode == 0, f"{' '.join(map(str, args))}\n{out.stdout}\n{out.stderr}"
    return out.stdout


def _has_setuptools() -> bool:
    try:
        import setuptools
    except ImportError:
        return False
    return Version(setuptools.__version__) >= Version("77")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    dist = tmp_path_factory.mktemp("dist")
    # Without build isolation where this environment has the build backend: no index needed.
    isolation = ["--no-build-isolation"] if _has_setuptools() else []
    _run(sys.executable, "-m", "pip", "wheel", "--no-deps", *isolation, "-w", dist, REPO, cwd=dist)
    (found,) = dist.glob("vaelab-*.whl")
    return found


def _requirements(wheel: Path) -> list[Requirement]:
    with zipfile.ZipFile(wheel) as z:
        meta = next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))
        lines = z.read(meta).decode("utf-8").splitlines()
    return [Requirement(line.split(":", 1)[1].strip()) for line in lines if line.startswith("Requires-Dist:")]


def test_wheel_accepts_a_range_of_torch_including_the_tested_one(wheel):
    (req,) = [r for r in _requirements(wheel) if r.name == "torch"]
    assert all(s.operator != "==" for s in req.specifier), req
    assert req.specifier.contains(Version(torch.__version__).base_version)  # 2.13.0+cpu -> 2.13.0
    assert req.specifier.contains("2.4.0") and req.specifier.contains("2.11.0")


def test_wheel_holds_the_configs(wheel):
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
    assert "vaelab/configs/models/vae-tuned.yaml" in names
    assert "vaelab/configs/experiments/table1.yaml" in names
    assert "vaelab/__main__.py" in names
    assert not any(n.startswith(("tests/", "results/", "benchmarks/")) for n in names)


def test_installed_wheel_lists_presets_and_trains(wheel, tmp_path, data_dir):
    env_dir = tmp_path / "env"
    _run(sys.executable, "-m", "venv", "--without-pip", env_dir, cwd=tmp_path)
    py = env_dir / "bin" / "python"
    # vaelab alone into the fresh environment (this pip installs into it) ...
    _run(sys.executable, "-m", "pip", "--python", py, "install", "--no-index", "--no-deps", "--quiet", wheel,
         cwd=tmp_path)
    # ... then its dependencies from this one, without this environment's vaelab: a .pth
    # file adds the directory holding torch (a source checkout installed in editable mode is
    # only reached through its own .pth file there, which a path added this way does not read).
    site = Path(_run(py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])", cwd=tmp_path).strip())
    (site / "deps-from-test-env.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")

    work = tmp_path / "work"  # no source tree here or above it
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(VAELAB_DATA=str(data_dir), VAELAB_OFFLINE="1", OMP_NUM_THREADS="1")
    where = _run(py, "-c", "import vaelab.cli; print(vaelab.cli.__file__)", cwd=work, env=env).strip()
    assert Path(where).is_relative_to(env_dir) and not Path(where).is_relative_to(REPO), where

    vaelab = env_dir / "bin" / "vaelab"
    presets = [line.split()[0] for line in _run(vaelab, "models", cwd=work, env=env).splitlines()]
    assert {"vae", "vae-tuned", "vae-cnn", "iwae", "cvae", "hvae"} <= set(presets)
    assert "table1" in _run(py, "-m", "vaelab", "sweep", "--help", cwd=work, env=env)

    out = _run(vaelab, "train", "--model", "vae-tuned", "--latent", "3", "--hidden", "32", "--epochs", "1",
               "--set", "data.train_limit=500", "--set", "data.test_limit=100", "--quiet", "--out", "run",
               cwd=work, env=env)
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["epochs"] == 1 and summary["valid_elbo"] < 0
    assert json.loads((work / "run" / "config.json").read_text())["config"]["name"] == "vae-tuned"
