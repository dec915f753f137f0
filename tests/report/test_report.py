"""Reports: tables from a synthetic store (numbers in the right cells, reference values
and differences), and every figure of a real tiny sweep written as a valid PNG."""

import csv
import io
import struct

import numpy as np
import pytest
import torch

from vaelab.cli import main
from vaelab.report.figures import FIGURES
from vaelab.report.grid import make_grid, save_grid
from vaelab.report.html import image_paths
from vaelab.report.spec import FIGURE_KINDS, matches
from vaelab.report.tables import build_table, grids, superscript, to_csv, to_markdown
from vaelab.store import Store

SPEC = {
    "name": "t1", "title": "Table", "rows": {"key": "name", "order": ["vae", "cvae"]},
    "columns": {"key": "model.latent", "title": "N_z"},
    "reference": {"source": "the study", "metric": "elbo", "note": "ELBOs",
                  "values": {"vae": {3: -137.64, 5: -116.93}, "cvae": {"3": -116.27, "5": -98.99},
                             "iwae": {3: -124.89}}},
}


def _cfg(name, latent, k=10):
    return {"name": name, "model": {"latent": latent}, "data": {"dataset": "mnist", "binarize": "seed-paper",
                                                                 "train_limit": None},
            "train": {"epochs": 3}, "eval": {"k": k}}


@pytest.fixture
def synthetic(tmp_path):
    store = Store(tmp_path / "store.sqlite")
    runs = [("a", "vae", _cfg("vae", 3)), ("b", "vae", _cfg("vae", 5)), ("c", "cvae", _cfg("cvae", 3)),
            ("d", "cvae", _cfg("cvae", 5))]
    store.add_experiment("e", "quick", {"report": {"tables": [SPEC]}}, runs)
    results = {"a": (-130.0, -128.5), "b": (-120.5, -118.25), "c": (-110.0, -108.0)}
    for rid, (elbo, ll) in results.items():
        assert store.claim_id(rid, "o", "w")
        store.finish(rid, {"elbo": elbo, "log_likelihood": ll, "k": 10, "n": 500, "log_likelihood_sem": 0.5,
                           "active_units": 3}, epochs=3, train_seconds=2.0, eval_seconds=1.0)
    store.claim_id("d", "o", "w")
    store.fail("d", "TrainingDiverged: NaN at epoch 2")
    yield store
    store.close()


def test_table_cells_reference_and_differences(synthetic):
    table = build_table(SPEC, synthetic.experiment_runs("e"), {"vae": "VAE", "cvae": "CVAE"}, "quick")
    assert table.rows == ["vae", "cvae", "iwae"]  # spec order; a reference-only row still shows
    assert table.columns == [3, 5]
    assert table.cell("vae", 3).value("elbo") == -130.0
    assert table.cell("vae", 5).value("log_likelihood") == -118.25
    assert table.cell("vae", 3).reference == -137.64
    assert table.cell("vae", 3).difference("elbo") == pytest.approx(7.64)  # ours - study: ours higher
    assert table.cell("cvae", 3).reference == -116.27  # string keys in YAML line up with int latents
    assert table.cell("cvae", 3).difference("elbo") == pytest.approx(6.27)
    assert table.cell("cvae", 5).run.status == "failed" and table.cell("cvae", 5).value("elbo") is None
    assert table.cell("cvae", 5).difference("elbo") is None
    assert table.cell("iwae", 3).run is None and table.cell("iwae", 3).reference == -124.89
    assert "quick effort" in table.protocol and "k=10" in table.protocol and "500 test images" in table.protocol

    md = to_markdown(table)
    assert "| VAE | -130.00 | -137.64 | +7.64 | -120.50 | -116.93 | -3.57 |" in md
    assert "| CVAE | -110.00 | -116.27 | +6.27 | failed | -98.99 |  |" in md
    assert "| VAE | -128.50 ± 0.50 | -118.25 ± 0.50 |" in md  # the log-likelihood table, with s.e.
    assert "IS log-likelihood (nats, k=10)" in md and "ELBOs" in md

    rows = list(csv.DictReader(io.StringIO(to_csv(table))))
    assert len(rows) == 3 * 2
    cell = {(r["row"], r["column"]): r for r in rows}
    assert float(cell["vae", "5"]["test_elbo"]) == -120.5
    assert float(cell["vae", "5"]["reference"]) == -116.93
    assert float(cell["vae", "5"]["difference"]) == pytest.approx(-3.57)
    assert float(cell["vae", "3"]["test_log_likelihood"]) == -128.5 and cell["vae", "3"]["k"] == "10"
    assert cell["cvae", "5"]["status"] == "failed" and "NaN" in cell["cvae", "5"]["error"]
    assert cell["iwae", "5"]["status"] == "missing" and cell["iwae", "5"]["reference"] == ""


def test_a_row_whose_cells_differ_in_protocol_says_so(tmp_path):
    """Cells of one row from runs of two protocols (a KL estimator changed between sweeps, a
    cell cut short) get one note per key, naming the cells; an older config without the key
    reads as the value its absence means (RunConfig.QUIET_DEFAULTS: the KL at the sample)."""
    store = Store(tmp_path / "store.sqlite")
    old = _cfg("vae", 3)  # before objective.kl existed
    new = {**_cfg("vae", 5), "objective": {"kl": "analytic"}}
    short = {**_cfg("vae", 10), "train": {"epochs": 2}}
    same = [_cfg("cvae", z) for z in (3, 5)]
    runs = [("a", "vae", old), ("b", "vae", new), ("c", "vae", short), ("d", "cvae", same[0]),
            ("e", "cvae", same[1]), ("f", "cvae", {**_cfg("cvae", 10), "objective": {"kl": "analytic"}})]
    store.add_experiment("e", "quick", {}, runs)
    for rid in "abcde":  # f never finishes: an unfinished cell is not a difference
        assert store.claim_id(rid, "o", "w")
        store.finish(rid, {"elbo": -100.0, "k": 10, "n": 500}, epochs=3, train_seconds=1.0, eval_seconds=1.0)
    rows = store.experiment_runs("e")
    store.close()
    table = build_table(SPEC, rows, {"vae": "VAE", "cvae": "CVAE"}, "quick")
    flagged = [n for n in table.notes if n.startswith(("VAE:", "CVAE:"))]
    assert flagged == ["VAE: objective.kl analytic at N_z 5; sampled at N_z 3, 10",
                       "VAE: train.epochs 2 at N_z 10; 3 at N_z 3, 5"]
    only_kl = build_table({**SPEC, "flag_keys": ["objective.kl"]}, rows, {"vae": "VAE"})
    assert [n for n in only_kl.notes if n.startswith("VAE:")] == ["VAE: objective.kl analytic at N_z 5; sampled at N_z 3, 10"]


def _finished(tmp_path, runs):
    store = Store(tmp_path / "store.sqlite")
    store.add_experiment("e", "demo", {}, runs)
    for rid, _, _ in runs:
        assert store.claim_id(rid, "o", "w")
        store.finish(rid, {"elbo": -100.0, "log_likelihood": -95.0, "k": 10, "n": 500}, epochs=3,
                     train_seconds=1.0, eval_seconds=1.0)
    rows = store.experiment_runs("e")
    store.close()
    return rows


def test_columns_follow_the_axis_order_with_reference_only_columns_among_them(tmp_path):
    rows = _finished(tmp_path, [("a", "vae", _cfg("vae", 3)), ("b", "vae", _cfg("vae", 20))])
    table = build_table(SPEC, rows, {}, "demo")  # the reference has N_z = 3 and 5
    assert table.columns == [3, 5, 20]


def test_surprising_numbers_carry_their_parts_notes(tmp_path):
    """A 2-layer model's N_z, a weighted KL and corrupted inputs are noted beside the rows
    they concern, generated from each run's config; a plain VAE gets none."""
    def hier(z):
        cfg = _cfg("hvae", z)
        cfg["model"].update(kind="hierarchical", inner_latent=64)
        return cfg

    beta = {**_cfg("beta", 3), "objective": {"beta": 4.0, "noise": "salt-pepper", "noise_level": 0.05}}
    rows = _finished(tmp_path, [("a", "vae", _cfg("vae", 3)), ("b", "vae", _cfg("vae", 20)),
                                ("c", "hvae", hier(3)), ("d", "hvae", hier(20)), ("e", "beta", beta)])
    spec = {**SPEC, "rows": {"key": "name", "order": ["vae", "hvae", "beta"]}}
    table = build_table(spec, rows, {"hvae": "2-layer VAE", "beta": "β-VAE"}, "demo")
    assert len(table.footnotes) == 3
    hier_note, noise_note, beta_note = table.footnotes
    assert "64-unit z1" in hier_note and "salt-pepper noise (level 0.05)" in noise_note and "4 × KL" in beta_note
    assert table.marks == {("row", "hvae"): [0], ("row", "beta"): [1, 2]}
    md = to_markdown(table)
    assert "| 2-layer VAE¹ | -100.00 |" in md and "| β-VAE²³ | -100.00 |" in md and "| vae | -100.00 |" in md
    assert f"- ¹ {hier_note}" in md and f"- ³ {beta_note}" in md


def test_a_row_trained_on_a_smaller_budget_says_so_beside_its_numbers(tmp_path):
    short = {**_cfg("cvae", 3), "train": {"epochs": 1}, "data": {**_cfg("cvae", 3)["data"], "train_limit": 20000}}
    rows = _finished(tmp_path, [("a", "vae", _cfg("vae", 3)), ("b", "vae", _cfg("vae", 5)), ("c", "cvae", short)])
    table = build_table(SPEC, rows, {}, "demo")
    assert table.marks[("row", "cvae")] == [0]
    assert table.footnotes[0] == ("Trained 1 epoch on 20000 training images at this effort, where most of the "
                                  "table trained 3 on all.")
    assert "epochs: 3 here (other budgets noted beside their rows), 100 in the reference" in " ".join(
        build_table({**SPEC, "reference": {**SPEC["reference"], "protocol": {"epochs": 100}}}, rows).mismatches)


def test_a_note_shared_by_a_column_is_marked_on_the_column(tmp_path):
    """Burda et al.'s table: objectives in rows, one and two stochastic layers in columns."""
    def cfg(name, kind):
        return {"name": name, "model": {"kind": kind}, "objective": {"name": name, "k": 50 if name == "iwae" else 1}}

    rows = _finished(tmp_path, [("a", "elbo", cfg("elbo", "vae")), ("b", "elbo", cfg("elbo", "hierarchical")),
                                  ("c", "iwae", cfg("iwae", "vae")), ("d", "iwae", cfg("iwae", "hierarchical"))])
    spec = {"name": "s", "rows": {"key": "name", "order": ["elbo", "iwae"]},
            "columns": {"key": "model.kind", "order": ["vae", "hierarchical"], "labels": {"hierarchical": "2 layers"}}}
    table = build_table(spec, rows, {}, "demo")
    iwae = table.footnotes.index(next(n for n in table.footnotes if "importance-weighted" in n))
    two = table.footnotes.index(next(n for n in table.footnotes if "z1" in n))
    assert table.marks == {("row", "iwae"): [iwae], ("column", "hierarchical"): [two]}
    assert any(h.startswith("2 layers") and h.endswith(superscript(two + 1)) for h in grids(table)[0][1])


def test_select_matching():
    cfg = _cfg("vae", 3)
    assert matches(cfg, {"model.latent": 3, "name": ["vae", "cvae"]})
    assert not matches(cfg, {"model.latent": [5, 10]})
    assert matches(cfg, {}) and matches(cfg, None)
    assert not matches(cfg, {"model.nothing": 1})


def test_every_figure_kind_is_registered():
    assert set(FIGURES.names()) == set(FIGURE_KINDS)


def _png_size(path):
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def test_report_writes_every_table_and_figure(report_sweep):
    sweep_dir, index = report_sweep
    out = index.parent
    assert (out / "tiny.md").exists() and (out / "tiny.csv").exists() and (out / "runs.csv").exists()
    md = (out / "tiny.md").read_text()
    assert "| name | N_z=2 | study | Δ | N_z=3 | study | Δ |" in md
    expected = {"curves", "recon", "samples", "digits", "latent3d", "manifold"}
    pngs = {p.stem: p for p in (out / "figures").glob("*.png")}
    assert set(pngs) == expected
    import matplotlib.image

    for name, path in pngs.items():
        w, h = _png_size(path)
        assert w > 100 and h > 100, name
        pixels = matplotlib.image.imread(path)  # decodes
        assert pixels.shape[0] == h and pixels.shape[1] == w and np.ptp(pixels) > 0  # not blank
    page = index.read_text()
    assert {p.stem for p in image_paths(index)} == expected
    for caption in ("Learning curves.", "Reconstructions.", "CVAE digits.", "Manifold."):
        assert caption in page
    assert page.count("Protocol:") >= len(expected) + 1 and "k=5" in page
    assert "nothing" in page and "not drawn here: no finished run matches model.latent=99" in page


def test_report_command_rebuilds_from_the_store_alone(report_sweep, tmp_path, data_dir, capsys):
    sweep_dir, _ = report_sweep
    out = tmp_path / "again"
    assert main(["report", "--sweep", str(sweep_dir), "--out", str(out), "--data-dir", str(data_dir),
                 "--quiet"]) == 0
    assert capsys.readouterr().out.strip() == str(out / "index.html")
    assert (out / "tiny.md").read_text() == (sweep_dir / "report" / "tiny.md").read_text()
    assert len(list((out / "figures").glob("*.png"))) == 6


def test_save_grid_unchanged(tmp_path):
    imgs = torch.rand(6, 28 * 28)
    path = save_grid(imgs, (1, 28, 28), tmp_path / "g.png", nrow=3)
    w, h = _png_size(path)
    grid = make_grid(imgs, (1, 28, 28), nrow=3)
    assert (h, w) == (grid.shape[0] * 3, grid.shape[1] * 3)


# --- a report that cannot mislead ---------------------------------------------------------


def _table(synthetic, **ref):
    spec = {**SPEC, "reference": {**SPEC["reference"], **ref}}
    return build_table(spec, synthetic.experiment_runs("e"), {"vae": "VAE", "cvae": "CVAE"}, "quick")


def test_protocol_differences_put_a_banner_on_the_table_and_neutral_differences(synthetic):
    from vaelab.report.html import _table_html

    table = _table(synthetic, protocol={"epochs": 100, "k": 10, "test_images": 10000, "train_images": "all"})
    assert table.mismatches == ["epochs: 3 here, 100 in the reference",
                                "test images: 500 here, 10000 in the reference"]
    banner = table.banner()
    assert "Protocol differs" in banner and "not a verdict" in banner
    assert "epochs: 3 here, 100 in the reference" in banner
    assert f"**{banner}**" in to_markdown(table)
    html = _table_html(table)
    assert 'class="neutral">+7.64<' in html and 'class="pos"' not in html and 'class="neg"' not in html


def test_same_protocol_colours_differences_as_a_verdict(synthetic):
    from vaelab.report.html import _table_html

    table = _table(synthetic, protocol={"epochs": 3, "k": 10, "test_images": 500})
    assert table.mismatches == [] and table.banner() is None and table.verdict
    html = _table_html(table)
    assert 'class="pos">+7.64<' in html and 'class="neg">-3.57<' in html


def test_a_reference_without_a_stated_protocol_is_not_a_verdict(synthetic):
    table = _table(synthetic)
    assert table.mismatches == ["the reference's protocol is not stated"] and not table.verdict


def test_incomparable_reference_shows_both_numbers_and_no_difference(synthetic):
    table = _table(synthetic, comparable=False)
    md = to_markdown(table)
    assert "| VAE | -130.00 | -137.64 | -120.50 | -116.93 |" in md
    assert "Δ" not in md.split("## IS log-likelihood")[0] and "+7.64" not in md
    assert "Not comparable" in table.banner()
    rows = list(csv.DictReader(io.StringIO(to_csv(table))))
    assert all(r["difference"] == "" for r in rows) and any(r["reference"] for r in rows)


def test_shipped_references_declare_their_protocol_and_frey_is_not_comparable():
    from vaelab.sweep import load_experiment

    for name in ("table1", "standard"):
        ref = load_experiment(name, "paper").report["tables"][0]["reference"]
        assert ref["protocol"]["epochs"] in (100, 3280) and ref.get("comparable", True)
    assert load_experiment("frey", "paper").report["tables"][0]["reference"]["comparable"] is False
    labels = load_experiment("table1", "smoke").report["labels"]
    assert "2 stochastic layers" in labels["iwae"]


def test_shipped_banners_type_no_numbers():
    """A banner's numbers are read from the runs (the differences of protocol); what the
    experiment file adds for an effort is words, so it cannot go stale."""
    import re

    from vaelab.sweep import experiment_names, load_experiment

    for name in experiment_names():
        for table in load_experiment(name, "smoke").report.get("tables") or []:
            for effort, text in ((table.get("reference") or {}).get("expected_gap") or {}).items():
                assert not re.search(r"\d", text), (name, effort, text)


@pytest.mark.parametrize("bad, match", [
    ({"protocol": {"epoch": 3}}, "protocol"), ({"comparable": "no"}, "comparable"), ({"verdict": 1}, "verdict"),
])
def test_reference_spec_is_checked(bad, match):
    from vaelab.errors import ConfigError
    from vaelab.report.spec import validate_report_spec

    spec = {**SPEC, "reference": {**SPEC["reference"], **bad}}
    with pytest.raises(ConfigError, match=match):
        validate_report_spec({"tables": [spec]})


@pytest.mark.parametrize("flags", ["objective.kl", [1], {"objective.kl": True}])
def test_flag_keys_must_be_a_list_of_keys(flags):
    from vaelab.errors import ConfigError
    from vaelab.report.spec import validate_report_spec

    validate_report_spec({"tables": [{**SPEC, "flag_keys": ["objective.kl"]}]})
    with pytest.raises(ConfigError, match="flag_keys"):
        validate_report_spec({"tables": [{**SPEC, "flag_keys": flags}]})


@pytest.mark.parametrize("n, shape", [(30, (5, 6)), (64, (8, 8)), (10, (2, 5)), (16, (4, 4)), (7, (3, 3))])
def test_grids_have_no_ragged_last_row_when_n_allows(n, shape):
    from vaelab.report.grid import grid_shape

    assert grid_shape(n) == shape


def test_report_html_shows_banner_and_standard_errors(report_sweep):
    _, index = report_sweep
    page = index.read_text()
    assert '<div class="banner" role="note">Protocol differs' in page and "epochs: 2 here, 100 in the reference" in page
    assert " ± " in page  # standard errors of the log-likelihoods


def test_report_files_are_readable_by_others(report_sweep):
    import stat

    _, index = report_sweep
    files = [index, *index.parent.glob("*.csv"), *index.parent.glob("*.md"), *(index.parent / "figures").glob("*")]
    assert len(files) > 5
    for f in files:
        assert stat.S_IMODE(f.stat().st_mode) & 0o044 == 0o044, f"{f} is {oct(f.stat().st_mode)}"


def test_a_report_loads_each_checkpoint_once(report_sweep, tmp_path, data_dir, monkeypatch):
    """Six figures show the tiny sweep's runs (some runs in several); each run's
    checkpoint is read once per report, not once per figure."""
    from vaelab.report import build_report, figures

    loaded = []
    real = figures.load_run
    monkeypatch.setattr(figures, "load_run", lambda path, device="cpu": loaded.append(path) or real(path, device))
    build_report(report_sweep[0], tmp_path / "again", data_dir, progress=False)
    assert loaded and len(loaded) == len(set(loaded)), loaded


def _store_with(path, results, failed=()):
    """A sweep directory at PATH whose store holds experiment e (table SPEC): RESULTS maps
    run id -> (name, latent, elbo); FAILED lists (id, name, latent)."""
    path.mkdir(parents=True, exist_ok=True)
    with Store(path / "store.sqlite") as store:
        runs = [(rid, name, _cfg(name, latent)) for rid, (name, latent, _) in results.items()]
        runs += [(rid, name, _cfg(name, latent)) for rid, name, latent in failed]
        store.add_experiment("e", "quick", {"report": {"tables": [SPEC]}}, runs)
        for rid, (_, _, elbo) in results.items():
            assert store.claim_id(rid, "o", "w")
            store.finish(rid, {"elbo": elbo, "log_likelihood": elbo + 2, "k": 10, "n": 500}, epochs=3)
        for rid, _, _ in failed:
            store.claim_id(rid, "o", "w")
            store.fail(rid, "TrainingDiverged: NaN at epoch 2")
    return path


def test_one_report_over_several_sweeps(tmp_path, data_dir):
    """Cells from two sweeps of one experiment: each cell from the sweep that finished it,
    the first listed winning a cell both finished, and runs.csv naming each run's sweep."""
    gpu = _store_with(tmp_path / "gpu", {"a": ("vae", 3, -130.0)}, failed=[("d", "cvae", 5)])
    cpu = _store_with(tmp_path / "cpu", {"a2": ("vae", 3, -999.0), "d2": ("cvae", 5, -100.0),
                                         "c": ("cvae", 3, -110.0)})
    out = tmp_path / "report"
    assert main(["report", "--sweep", str(gpu), "--sweep", str(cpu), "--out", str(out), "--quiet",
                 "--data-dir", str(data_dir)]) == 0
    table = {(r["row"], r["column"]): r for r in csv.DictReader(io.StringIO((out / "t1.csv").read_text()))}
    assert float(table[("vae", "3")]["test_elbo"]) == -130.0  # both finished it: the first sweep's
    assert float(table[("cvae", "5")]["test_elbo"]) == -100.0  # failed in the first, finished in the second
    assert float(table[("cvae", "3")]["test_elbo"]) == -110.0
    assert "share the cell" in (out / "t1.md").read_text()
    runs = list(csv.DictReader(io.StringIO((out / "runs.csv").read_text())))
    assert {r["run_id"]: r["sweep"] for r in runs} == {"a": gpu.as_posix(), "d": gpu.as_posix(),
                                                        "a2": cpu.as_posix(), "d2": cpu.as_posix(),
                                                        "c": cpu.as_posix()}


def test_a_sweep_without_weights_listed_first_skips_the_model_figures(report_sweep, tmp_path, data_dir):
    """The same runs in two sweeps, the first without weights (as from a GPU machine): the
    first sweep's runs are the ones shown, so the figures drawn from the models are skipped
    with a line saying why, never drawn from the other sweep's copy; listed the other way
    round, they are drawn."""
    import shutil

    from vaelab.report import build_report

    sweep_dir, _ = report_sweep
    bare = tmp_path / "bare"
    shutil.copytree(sweep_dir, bare, ignore=shutil.ignore_patterns("checkpoints", "report"))
    index = build_report([bare, sweep_dir], tmp_path / "r1", data_dir, progress=False)
    page = index.read_text()
    assert {p.stem for p in image_paths(index)} == {"curves"}  # the learning curves need no weights
    assert page.count("has its weights here") == 5  # recon, samples, digits, latent3d, manifold
    runs = list(csv.DictReader(io.StringIO((index.parent / "runs.csv").read_text())))
    assert {r["sweep"] for r in runs} == {bare.as_posix()}
    index = build_report([sweep_dir, bare], tmp_path / "r2", data_dir, progress=False)
    assert {p.stem for p in image_paths(index)} == {"curves", "recon", "samples", "digits", "latent3d", "manifold"}


def test_figures_of_a_sweep_without_weights_come_from_its_own_report(report_sweep, tmp_path, data_dir):
    """A sweep back from a GPU machine has no weights but the report drawn there: the model
    figures are taken from that report, byte for byte, and say so; not when the image is
    older than the runs it shows (drawn before they finished)."""
    import os
    import shutil

    from vaelab.report import build_report

    sweep_dir, _ = report_sweep
    bare = tmp_path / "gpu"
    shutil.copytree(sweep_dir, bare, ignore=shutil.ignore_patterns("checkpoints"))
    index = build_report([bare], tmp_path / "r1", data_dir, progress=False)
    model_figures = {"recon", "samples", "digits", "latent3d", "manifold"}
    assert {p.stem for p in image_paths(index)} == {"curves"} | model_figures
    for name in model_figures:
        assert (index.parent / "figures" / f"{name}.png").read_bytes() == \
            (bare / "report" / "figures" / f"{name}.png").read_bytes()
    assert index.read_text().count("Drawn by the report of gpu") == len(model_figures)
    old = (bare / "report" / "figures" / "recon.png")
    os.utime(old, (1.0, 1.0))  # drawn before the runs finished: not theirs
    index = build_report([bare], tmp_path / "r2", data_dir, progress=False)
    assert {p.stem for p in image_paths(index)} == {"curves"} | model_figures - {"recon"}
    assert "not drawn here: none of the" in index.read_text()


def test_a_missing_sweep_writes_nothing(tmp_path, data_dir, capsys):
    """One of several sweeps has no store: one line naming it, exit 2, no report directory."""
    good = _store_with(tmp_path / "good", {"a": ("vae", 3, -130.0)})
    out = tmp_path / "report"
    assert main(["report", "--sweep", str(good), "--sweep", str(tmp_path / "nope"), "--out", str(out),
                 "--quiet", "--data-dir", str(data_dir)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(tmp_path / "nope") in err
    assert not out.exists()


def test_a_report_rebuilds_from_its_own_records(report_sweep, tmp_path, data_dir):
    """A report keeps one record per finished run it shows; given as a source, the records
    give the same tables, curves and runs.csv with no sweep directory at all, the model
    figures coming from that report's own images, and they join a new sweep's cells."""
    import json
    import shutil

    from vaelab.report import build_report

    sweep_dir, index = report_sweep
    first = tmp_path / "first"
    build_report(sweep_dir, first, data_dir, progress=False)
    records = json.loads((first / "records" / "experiments.json").read_text())
    (exp,) = records["experiments"]
    assert exp["name"] == "tinyreport" and len(exp["runs"]) == 3
    rec = json.loads((first / "records" / f"{exp['runs'][0]}.json").read_text())
    assert rec["sweep"] == sweep_dir.as_posix() and rec["run"]["status"] == "done" and len(rec["curve"]) == 2
    gone = tmp_path / "moved-away"
    shutil.move(str(sweep_dir), gone)  # the sweep directory is gone (another machine's)
    try:
        again = build_report([first], tmp_path / "again", data_dir, progress=False)
    finally:
        shutil.move(str(gone), sweep_dir)
    for name in ("tiny.md", "tiny.csv", "runs.csv"):
        assert (again.parent / name).read_text() == (first / name).read_text(), name
    assert {p.stem for p in image_paths(again)} == {"curves", "recon", "samples", "digits", "latent3d", "manifold"}
    assert (again.parent / "figures" / "recon.png").read_bytes() == (first / "figures" / "recon.png").read_bytes()
    assert "Drawn by the report of first" in again.read_text()
    # a new sweep's cell beside the recorded ones: it wins where both have one (listed first)
    new = tmp_path / "new"
    vae3 = next(r["run"]["config"] for r in (json.loads((first / "records" / f"{i}.json").read_text())
                                              for i in exp["runs"])
                if r["run"]["name"] == "vae" and r["run"]["config"]["model"]["latent"] == 3)
    with Store(new / "store.sqlite") as store:
        store.add_experiment("tinyreport", "smoke", exp["spec"], [("n3", "vae", {**vae3, "seed": 9})])
        assert store.claim_id("n3", "o", "w")
        store.finish("n3", {"elbo": -99.0, "log_likelihood": -97.0, "k": 5, "n": 60}, epochs=2)
    mixed = build_report([new, first], first, data_dir, progress=False)  # into the same folder
    table = {(r["row"], r["column"]): r for r in csv.DictReader(io.StringIO((mixed.parent / "tiny.csv").read_text()))}
    assert float(table[("vae", "3")]["test_elbo"]) == -99.0
    assert table[("vae", "2")]["status"] == "done" and table[("cvae", "3")]["status"] == "done"
    kept = json.loads((first / "records" / "experiments.json").read_text())["experiments"][0]["runs"]
    assert "n3" in kept and len(kept) == 3 and len(list((first / "records").glob("*.json"))) == 4


def test_device_column_names_the_device_a_cell_ran_on():
    from vaelab.report.tables import device_of
    explicit = {"train": {"device": "cuda"}}
    auto = {"train": {"device": "auto"}}
    assert device_of(explicit, {"device": "cpu", "torch": "2.13.0+cpu"}) == "cuda"  # the config said
    assert device_of(auto, {"device": "cuda", "torch": "2.11.0+cu130"}) == "cuda"  # the evaluation's record
    assert device_of(auto, {"torch": "2.13.0+cpu"}) == "cpu"  # an older record: a CPU-only build
    assert device_of(auto, {"torch": "2.11.0+cu130"}) == "auto"  # could have been either: left as recorded
