"""Tiny experiment files for sweep tests (seconds, not minutes)."""

import textwrap
from pathlib import Path

import pytest


def experiment_yaml(runs: str, smoke: str = "{data.train_limit: 300, data.test_limit: 50, train.epochs: 2, eval.k: 5}",
                    base: str = "{preset: vae, model.hidden: [64]}") -> str:
    return textwrap.dedent(f"""\
        name: tiny
        description: a tiny grid for tests
        base: {base}
        runs: {runs}
        efforts:
          smoke: {smoke}
        report:
          tables:
            - {{name: tiny, rows: {{key: name}}, columns: {{key: model.latent}}}}
        """)


@pytest.fixture
def write_experiment(tmp_path):
    def write(name: str = "tiny.yaml", **kw) -> Path:
        path = tmp_path / name
        path.write_text(experiment_yaml(**kw))
        return path

    return write
