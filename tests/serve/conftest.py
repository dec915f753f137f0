"""A tiny finished sweep (a VAE and a CVAE with 2-D latents) and a way to run `vaelab serve`
on it as a user does: a separate process, whose announced address the tests read."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Iterator

import pytest

EXPERIMENT = textwrap.dedent("""\
    name: tinyserve
    description: two tiny runs to explore
    base: {preset: vae, model.hidden: [64], model.latent: 2, data.binarize: seed-paper}
    runs:
      chain:
        - set: {}
        - set: {name: cvae, model.kind: cvae}
    efforts:
      smoke: {data.train_limit: 1000, data.test_limit: 100, train.epochs: 2, eval.k: 5}
    report:
      tables:
        - {name: tiny, rows: {key: name}, columns: {key: model.latent}}
    """)


@pytest.fixture(scope="session")
def serve_sweep(tmp_path_factory, data_dir) -> Path:
    """A finished sweep directory: runs vae and cvae, stored with their numbers."""
    from vaelab.sweep import load_experiment, run_sweep

    root = tmp_path_factory.mktemp("serve")
    exp = root / "tinyserve.yaml"
    exp.write_text(EXPERIMENT)
    result = run_sweep([load_experiment(exp, "smoke")], root / "sweep", workers=1, data_dir=data_dir, progress=False)
    assert result.ok, result.summary()
    return root / "sweep"


class Served:
    """A `vaelab serve` process and the address it announced."""

    def __init__(self, target: Path, *flags: str, data_dir: Path | None = None):
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        if data_dir is not None:
            env["VAELAB_DATA"] = str(data_dir)
        self.proc = subprocess.Popen([sys.executable, "-m", "vaelab.cli", "serve", str(target), "--port", "0", *flags],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        line = self.proc.stdout.readline()
        found = re.search(r"(http://\S+/)", line)
        if not found:
            self.stop()
            raise AssertionError(f"vaelab serve announced no address: {line!r} {self.proc.stderr.read()!r}")
        self.url = found.group(1)
        self.host, self.port = re.match(r"http://\[?([^\]/]+?)\]?:(\d+)/", self.url).groups()
        self.port = int(self.port)

    def stop(self) -> str:
        """Stop it as Ctrl-C would; -> what it wrote on stderr."""
        if self.proc.poll() is None:
            self.proc.send_signal(2)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.stderr.read()


@pytest.fixture
def serve() -> Iterator:
    started: list[Served] = []

    def start(target: Path, *flags: str, data_dir: Path | None = None) -> Served:
        s = Served(target, *flags, data_dir=data_dir)
        started.append(s)
        return s

    yield start
    for s in started:
        s.stop()
