"""Parts from outside vaelab: the example plugin (examples/vaelab-mog, a mixture-of-Gaussians
prior) installed as a package adds ``model.prior: mog`` in every process, sweep workers
included, through its ``vaelab.parts`` entry point; without it the name is unknown."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from vaelab.registry import Registry, plugin_entries, rescan_plugins

ROOT = Path(__file__).resolve().parents[1]
PLUGIN = ROOT / "examples" / "vaelab-mog"
SMALL = ["--set", "data.train_limit=600", "--set", "data.test_limit=100", "--set", "train.threads=1",
         "--set", "model.hidden=[64]"]


@pytest.fixture(scope="module")
def plugin_site(tmp_path_factory):
    """The example plugin installed (as pip installs it) into a folder of its own."""
    site, source = tmp_path_factory.mktemp("site"), tmp_path_factory.mktemp("src") / "vaelab-mog"
    shutil.copytree(PLUGIN, source, ignore=shutil.ignore_patterns("build", "*.egg-info"))  # builds leave files
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                    "--disable-pip-version-check", "--target", str(site), str(source)], check=True)
    return site


def vaelab(*args: str, site: Path | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """The command line in a fresh process, with the plugin's folder importable or not."""
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    if site is not None:
        env["PYTHONPATH"] = str(site)
    return subprocess.run([sys.executable, "-c", "import sys; from vaelab.cli import main; sys.exit(main())",
                           *args], capture_output=True, text=True, env=env, cwd=cwd)


@pytest.mark.slow
def test_the_example_plugin_adds_a_prior_everywhere(plugin_site, tmp_path, data_dir):
    parts = vaelab("parts", site=plugin_site)
    assert parts.returncode == 0 and "mog (plugin)" in parts.stdout
    absent = vaelab("train", "--model", "vae-tuned", "--set", "model.prior=mog", "--out", str(tmp_path / "x"))
    assert absent.returncode == 2 and "unknown prior 'mog'" in absent.stderr and "normal, vamp" in absent.stderr
    assert len(absent.stderr.strip().splitlines()) == 1 and not (tmp_path / "x").exists()
    typo = vaelab("train", "--model", "vae-tuned", "--set", "model.prior=mgo", site=plugin_site)
    assert typo.returncode == 2 and "did you mean 'mog'" in typo.stderr
    bad = vaelab("train", "--model", "vae-tuned", "--set", "model.prior=mog", "--set",
                 "model.options.mog.components=0", site=plugin_site)
    assert bad.returncode == 2 and "model.options.mog" in bad.stderr and "components must be >= 1" in bad.stderr

    run = tmp_path / "run"
    trained = vaelab("train", "--model", "vae-tuned", "--latent", "4", "--epochs", "2", "--quiet",
                     "--set", "model.prior=mog", "--set", "model.options.mog.components=5", *SMALL,
                     "--out", str(run), site=plugin_site)
    assert trained.returncode == 0, trained.stderr
    raw = json.loads((run / "config.json").read_text())
    assert raw["architecture"]["prior"]["name"] == "mog" and raw["architecture"]["prior"]["components"] == 5
    assert raw["config"]["objective"].get("kl", "sampled") == "sampled"  # auto asked the prior: no closed form
    ev = vaelab("eval", str(run), "--k", "20", "--json", site=plugin_site)
    assert ev.returncode == 0, ev.stderr
    numbers = json.loads(ev.stdout)
    assert numbers["log_likelihood"] >= numbers["elbo"]  # the same samples: log-mean-exp >= mean
    # the prior's mixture weights moved from uniform: it trained with the model
    from safetensors.torch import load_file
    ckpt = sorted((run / "checkpoints").glob("*.safetensors"))[-1]
    logits = load_file(str(ckpt))["model.prior.logits"]
    assert logits.shape == (5,) and float(logits.std()) > 0
    # without the plugin the run cannot even be read back: its prior is unknown there
    assert vaelab("eval", str(run), "--k", "5").returncode == 2

    exp = tmp_path / "mog.yaml"
    exp.write_text(textwrap.dedent("""\
        name: mog
        base: {preset: vae-tuned, model.prior: mog, model.options: {mog: {components: 3}}, model.hidden: [64],
               data.train_limit: 600, data.test_limit: 100}
        runs: {sweep: {model.latent: [2, 3]}}
        efforts: {smoke: {train.epochs: 1, eval.k: 10}}
        """))
    sweep = vaelab("sweep", str(exp), "--effort", "smoke", "--workers", "2", "--quiet", "--out",
                   str(tmp_path / "sweep"), site=plugin_site)
    assert sweep.returncode == 0, sweep.stderr
    assert "2/2 runs done" in sweep.stdout
    runs = sorted((tmp_path / "sweep" / "runs").iterdir())
    assert len(runs) == 2 and all(json.loads((r / "eval.json").read_text())["k"] == 10 for r in runs)


def test_entry_points_are_read_lazily_and_named_kind_dot_name(monkeypatch):
    """A table asks the installed packages only when a name is not its own, and a plugin
    cannot take a built-in's name."""
    from importlib import metadata

    class FakeEP:
        def __init__(self, name, obj):
            self.name, self.value, self.dist, self._obj = name, f"fake:{name}", None, obj

        def load(self):
            if isinstance(self._obj, Exception):
                raise self._obj
            return self._obj

    eps = [FakeEP("thing.extra", "EXTRA"), FakeEP("thing.base", "SHADOW"), FakeEP("thing.broken", ImportError("x"))]
    monkeypatch.setattr(metadata, "entry_points", lambda group: eps)
    rescan_plugins()
    try:
        table = Registry("thing", {"base": "BASE"}, plugins="thing")
        assert table.get("base") == "BASE"  # a built-in name is never taken
        assert table.names() == ["base", "broken", "extra"] and table.origin("extra") == "plugin"
        assert table.get("extra") == "EXTRA"
        with pytest.raises(Exception, match="could not be loaded.*fix or uninstall"):
            table.get("broken")
        eps.append(FakeEP("nodot", "X"))
        rescan_plugins()
        with pytest.raises(Exception, match="must be named KIND.NAME"):
            table.names()
    finally:
        monkeypatch.undo()
        rescan_plugins()
        plugin_entries()
