"""Sample quality in reports: an FD column beside each log-likelihood column, only where some
run stored a score; every quality number in the table's CSV and runs.csv."""

from __future__ import annotations

import csv
import io

import pytest

from vaelab.report.tables import build_table, to_csv, to_markdown
from vaelab.store import Store

SPEC = {"name": "t", "title": "Table", "rows": {"key": "name", "order": ["vae", "cvae"]},
        "columns": {"key": "model.latent", "title": "N_z"}}


def _cfg(name: str, latent: int) -> dict:
    return {"name": name, "model": {"latent": latent}, "data": {"dataset": "mnist", "binarize": "seed-paper"},
            "train": {"epochs": 3}, "eval": {"k": 10}}


def _quality(fd: float, label_accuracy: float | None = None) -> dict:
    return {"fd": fd, "precision": 0.7, "recall": 0.6, "classifier_accuracy": 0.9877, "label_accuracy": label_accuracy,
            "n": 500, "k": 3, "feature_net": {"kind": "classifier", "sha256": "ab" * 32}}


@pytest.fixture
def store(tmp_path):
    s = Store(tmp_path / "store.sqlite")
    s.add_experiment("e", "quick", {"report": {"tables": [SPEC]}},
                     [("a", "vae", _cfg("vae", 3)), ("b", "vae", _cfg("vae", 5)), ("c", "cvae", _cfg("cvae", 3))])
    for rid, quality in (("a", _quality(12.5)), ("b", None), ("c", _quality(8.25, 0.93))):
        assert s.claim_id(rid, "o", "w")
        metrics = {"elbo": -100.0, "log_likelihood": -95.0, "k": 10, "n": 500}
        s.finish(rid, {**metrics, "quality": quality} if quality else metrics, epochs=3)
    yield s
    s.close()


def test_an_fd_column_beside_each_log_likelihood_column(store):
    md = to_markdown(build_table(SPEC, store.experiment_runs("e"), {}, "quick"))
    elbo, ll = md.split("## IS log-likelihood")
    assert "FD" not in elbo.split("## test ELBO")[1]  # the ELBO grid is unchanged
    assert "| name | N_z=3 | FD | N_z=5 | FD |" in ll
    assert "| vae | -95.00 | 12.50 | -95.00 | – |" in ll  # a run without a score says so
    assert "| cvae | -95.00 | 8.25 | – | – |" in ll
    assert "FD: Fréchet distance" in ll and "500 model samples" in ll and "abababababab" in ll


def test_the_csv_carries_every_quality_number(store):
    rows = {(r["row"], r["column"]): r for r in csv.DictReader(io.StringIO(to_csv(
        build_table(SPEC, store.experiment_runs("e"), {}, "quick"))))}
    assert rows[("cvae", "3")]["fd"] == "8.2500" and rows[("cvae", "3")]["label_accuracy"] == "0.9300"
    assert rows[("vae", "3")]["precision"] == "0.7000" and rows[("vae", "3")]["label_accuracy"] == ""
    assert rows[("vae", "5")]["fd"] == "" and rows[("vae", "3")]["quality_n"] == "500"
    assert rows[("vae", "3")]["feature_net_sha256"] == "ab" * 32


def test_no_column_without_any_score(tmp_path):
    with Store(tmp_path / "store.sqlite") as s:
        s.add_experiment("e", "quick", {"report": {"tables": [SPEC]}}, [("a", "vae", _cfg("vae", 3))])
        s.claim_id("a", "o", "w")
        s.finish("a", {"elbo": -100.0, "log_likelihood": -95.0, "k": 10, "n": 500}, epochs=3)
        md = to_markdown(build_table(SPEC, s.experiment_runs("e"), {}, "quick"))
    assert "FD" not in md


@pytest.mark.slow
def test_a_real_sweep_reports_its_sample_quality(report_sweep):
    """The tiny sweep of tests/report scored every run: the table shows FD, runs.csv the numbers,
    the class samples figure was drawn with each class's label accuracy."""
    _, index = report_sweep
    out = index.parent
    md = (out / "tiny.md").read_text()
    assert "| name | N_z=2 | FD | N_z=3 | FD |" in md
    runs = list(csv.DictReader(io.StringIO((out / "runs.csv").read_text())))
    assert len(runs) == 3 and all(float(r["fd"]) > 0 for r in runs)
    assert [r["label_accuracy"] != "" for r in runs].count(True) == 1  # the CVAE only
    assert "FD: Fréchet distance" in index.read_text()


@pytest.mark.slow
def test_a_sweep_scored_afterwards_reports_its_quality(report_sweep, tmp_path, capsys, data_dir):
    """A sweep stored before sweeps scored sample quality: `vaelab quality SWEEP` scores each
    finished run with weights, the store keeps it, the report shows it."""
    import shutil

    from vaelab.cli import main
    from vaelab.report import build_report

    sweep = tmp_path / "sweep"
    shutil.copytree(report_sweep[0], sweep)
    with Store(sweep / "store.sqlite") as s:
        ids = [r.id for r in s.runs(status="done")]
        for rid in ids:
            s.add_metrics(rid, {}, drop=("quality",))
    before = build_report(sweep, tmp_path / "before", data_dir, progress=False).parent
    assert "FD" not in (before / "tiny.md").read_text()
    assert main(["quality", str(sweep), "--data-dir", str(data_dir)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == len(ids) + 1 and all("fd " in line for line in lines[:-1])
    with Store(sweep / "store.sqlite") as s:
        assert all(s.get(rid).metrics["quality"]["fd"] > 0 for rid in ids)
    md = (build_report(sweep, tmp_path / "after", data_dir, progress=False).parent / "tiny.md").read_text()
    assert "| name | N_z=2 | FD | N_z=3 | FD |" in md
