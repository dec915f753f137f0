"""Experiment files -> runs: combinators, layering, efforts, stable ids, errors."""

import hashlib
import json
import subprocess
import sys

import pytest

from vaelab.config import RunConfig, read_yaml
from vaelab.efforts import EFFORTS
from vaelab.errors import ConfigError
from vaelab.sweep.experiment import (chain, expand, experiment_names, find_experiment, fixed, load_experiment,
                                     product, run_id, sweep, zip_)

STUDY_MODELS = ["vae", "vae-tuned", "vae-cnn", "iwae", "dvae", "beta-vae", "cvae"]


# --- combinators -------------------------------------------------------------------------


def test_combinators():
    a = sweep("model.latent", [3, 5])
    b = sweep("preset", ["vae", "cvae"])
    assert a == [{"model.latent": 3}, {"model.latent": 5}]
    assert product([b, a]) == [{"preset": "vae", "model.latent": 3}, {"preset": "vae", "model.latent": 5},
                               {"preset": "cvae", "model.latent": 3}, {"preset": "cvae", "model.latent": 5}]
    assert zip_([a, b]) == [{"model.latent": 3, "preset": "vae"}, {"model.latent": 5, "preset": "cvae"}]
    assert chain([a, fixed({"x": 1})]) == [{"model.latent": 3}, {"model.latent": 5}, {"x": 1}]
    with pytest.raises(ConfigError, match="one length"):
        zip_([a, sweep("x", [1, 2, 3])])


def test_expand_yaml_nodes():
    node = {"product": [{"sweep": {"preset": ["vae", "cvae"]}},
                        {"chain": [{"set": {"model": {"latent": 2}, "name": "two"}},
                                   {"sweep": {"model.latent": [3]}}]}]}
    assert expand(node) == [
        {"preset": "vae", "model.latent": 2, "name": "two"}, {"preset": "vae", "model.latent": 3},
        {"preset": "cvae", "model.latent": 2, "name": "two"}, {"preset": "cvae", "model.latent": 3}]
    assert expand([{"set": {"a": 1}}, {"set": {"a": 2}}]) == [{"a": 1}, {"a": 2}]  # a list is a chain


@pytest.mark.parametrize("node, match", [
    ({"grid": []}, "unknown combinator 'grid'"),
    ({"sweep": {"a": [1], "b": [2]}}, "one key"),
    ({"sweep": {"a": []}}, "non-empty list"),
    ({"sweep": {"a": 3}}, "non-empty list"),
    ({"product": []}, "non-empty list"),
    ({"set": [1]}, "mapping"),
    ("vae", "expected one of sweep"),
    ({"sweep": {"a": [1]}, "set": {"b": 1}}, "expected one of sweep"),
])
def test_bad_nodes(node, match):
    with pytest.raises(ConfigError, match=match):
        expand(node)


# --- the shipped experiments ------------------------------------------------------------


def test_shipped_experiments_load_at_every_effort():
    assert {"table1", "frey", "standard"} <= set(experiment_names())
    for name in experiment_names():  # the efforts the command line lists are exactly theirs, in order
        assert list(read_yaml(find_experiment(name))["efforts"]) == list(EFFORTS), name
    for name in ("table1", "frey", "standard"):
        for effort in EFFORTS:
            exp = load_experiment(name, effort)
            assert exp.runs and exp.effort == effort
            assert len({r.id for r in exp.runs}) == len(exp.runs)


def test_table1_grid_and_layering():
    exp = load_experiment("table1", "smoke")
    grid = {(r.config.name, r.config.model.latent) for r in exp.runs}
    assert {(m, z) for m in STUDY_MODELS for z in (3, 5, 10, 20, 200)} <= grid
    by = {(r.config.name, r.config.model.latent): r.config for r in exp.runs}
    for cfg in by.values():  # base and effort reach every run
        assert cfg.data.binarize == "seed-paper" and cfg.data.train_limit == 1000
        assert cfg.train.epochs == 1 and cfg.eval.k == 10
    assert by[("vae-tuned", 3)].optim.lr == 0.01 and by[("vae-tuned", 5)].optim.lr == 0.001  # by_latent
    assert by[("vae-cnn", 200)].optim.lr == 0.001 and by[("vae-cnn", 3)].optim.lr == 0.01
    assert by[("iwae", 3)].objective.name == "iwae" and by[("iwae", 3)].objective.k == 50
    paper = {(r.config.name, r.config.model.latent): r.config for r in load_experiment("table1", "paper").runs}
    assert paper[("vae", 20)].train.epochs == 100 and paper[("vae", 20)].eval.k == 5000
    assert paper[("vae", 20)].data.train_limit is None


def test_study_reference_values_are_stored_as_printed():
    ref = load_experiment("table1", "smoke").spec["report"]["tables"][0]["reference"]
    assert ref["metric"] == "elbo"
    assert ref["values"]["vae"][3] == -137.64 and ref["values"]["cvae"][200] == -76.39
    assert ref["values"]["iwae"][10] == -177.95
    assert set(ref["values"]) == set(STUDY_MODELS)
    assert all(len(v) == 5 for v in ref["values"].values())
    burda = load_experiment("standard", "smoke").spec["report"]["tables"][0]["reference"]
    assert burda["metric"] == "log_likelihood"
    assert burda["values"]["vae"]["vae"] == -86.76 and burda["values"]["iwae"]["vae"] == -84.78
    assert burda["values"]["iwae"]["hierarchical"] == -82.90


def test_standard_paper_uses_burdas_schedule():
    exp = load_experiment("standard", "paper")
    assert len(exp.runs) == 4
    for r in exp.runs:
        c = r.config
        assert (c.optim.name, c.optim.lr, c.optim.schedule, c.train.batch_size) == ("adam", 0.001, "burda", 20)
        assert c.train.epochs == 3280 and c.eval.k == 5000 and c.data.binarize == "dynamic"
    kinds = sorted((r.config.name, r.config.model.kind) for r in exp.runs)
    assert kinds == [("iwae", "hierarchical"), ("iwae", "vae"), ("vae", "hierarchical"), ("vae", "vae")]


def test_frey_experiment():
    exp = load_experiment("frey", "paper")
    assert [r.config.model.latent for r in exp.runs] == [2, 5, 10, 20]
    assert all(r.config.data.dataset == "frey" and r.config.train.epochs == 3000 for r in exp.runs)


# --- ids ---------------------------------------------------------------------------------


def test_run_id_is_the_hash_of_the_canonical_config():
    cfg = RunConfig.from_dict({"name": "vae", "model": {"latent": 3}})
    text = json.dumps(cfg.to_dict(), sort_keys=True, separators=(",", ":"))
    assert run_id(cfg) == hashlib.sha256(text.encode()).hexdigest()[:12]
    assert run_id(cfg) != run_id(cfg.replace(**{"model.latent": 5}))


def test_ids_are_stable_across_loads_and_processes():
    ids = [r.id for r in load_experiment("table1", "quick").runs]
    assert ids == [r.id for r in load_experiment("table1", "quick").runs]
    code = ("from vaelab.sweep import load_experiment; "
            "print(' '.join(r.id for r in load_experiment('table1', 'quick').runs))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"PYTHONHASHSEED": "123", "PATH": ""}).stdout.split()
    assert out == ids
    smoke = {r.id for r in load_experiment("table1", "smoke").runs}
    assert not smoke & set(ids)  # another effort is another config, so other runs


def test_overrides_from_the_command_line_win_and_change_ids():
    base = load_experiment("frey", "smoke")
    over = load_experiment("frey", "smoke", {"train.epochs": 7})
    assert all(r.config.train.epochs == 7 for r in over.runs)
    assert {r.id for r in base.runs}.isdisjoint(r.id for r in over.runs)


def test_duplicate_points_run_once(tmp_path):
    f = tmp_path / "dup.yaml"
    f.write_text("runs: {chain: [{sweep: {model.latent: [3, 3, 5]}}]}\nefforts: {smoke: {}}\n")
    assert [r.config.model.latent for r in load_experiment(f, "smoke").runs] == [3, 5]


# --- bad files ---------------------------------------------------------------------------


@pytest.mark.parametrize("text, match", [
    ("runs: {sweep: {model.latent: [3]}}\nefforts: {smoke: {}}\ncolour: red\n", "unknown top-level key"),
    ("efforts: {smoke: {}}\n", "no 'runs' grid"),
    ("runs: {sweep: {model.latent: [3]}}\nefforts: {quick: {}}\n", "no effort 'smoke'"),
    ("runs: {sweep: {model.latnet: [3]}}\nefforts: {smoke: {}}\n", "run 1 .*unknown config key 'model.latnet'"),
    ("runs: {sweep: {model.latent: [3, -1]}}\nefforts: {smoke: {}}\n", "run 2 .*model.latent"),
    ("runs: {sweep: {preset: [nope]}}\nefforts: {smoke: {}}\n", "unknown model preset 'nope'"),
    ("runs: {sweep: {model.latent: [3]}}\nefforts: {smoke: {train.epochs: 0}}\n", "train.epochs"),
    ("runs: {sweep: {model.latent: [3]}}\nefforts: {smoke: [1]}\n", "efforts.smoke must be a mapping"),
    ("runs: [\n", "not valid YAML"),
    ("runs: {sweep: {model.latent: [3]}}\nefforts: {smoke: {}}\nreport: {figures: [{name: f, kind: pie}]}\n",
     "unknown figure kind 'pie'"),
    ("runs: {sweep: {model.latent: [3]}}\nefforts: {smoke: {}}\nreport: {tables: [{name: t, rows: {key: name}}]}\n",
     "columns"),
    ("runs: {sweep: {model.latent: [3]}}\nefforts: {smoke: {}}\n"
     "report: {figures: [{name: f, kind: samples, colour: red}]}\n", "unknown option"),
])
def test_bad_experiment_files_are_config_errors(tmp_path, text, match):
    f = tmp_path / "bad.yaml"
    f.write_text(text)
    with pytest.raises(ConfigError, match=match):
        load_experiment(f, "smoke")


def test_unknown_experiment_name():
    with pytest.raises(ConfigError, match="unknown experiment 'tabel1'; known: .*table1"):
        load_experiment("tabel1", "smoke")
    with pytest.raises(ConfigError, match="does not exist"):
        load_experiment("missing/file.yaml", "smoke")


def test_an_effort_grid_keeps_only_matching_runs(tmp_path):
    full = load_experiment("table1", "quick")
    demo = load_experiment("table1", "demo")
    assert {r.config.model.latent for r in demo.runs} == {3, 20}
    assert len(demo.runs) == len(full.runs) * 2 // 5  # 2 of the 5 latent sizes, every model
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\nruns: {sweep: {model.latent: [3, 5]}}\n"
                   "efforts: {smoke: {grid: {model.latnt: [3]}}}\n")
    with pytest.raises(ConfigError, match="model.latnt"):
        load_experiment(bad, "smoke")
    bad.write_text("name: bad\nruns: {sweep: {model.latent: [3, 5]}}\nefforts: {smoke: {grid: {model.latent: 3}}}\n")
    with pytest.raises(ConfigError, match="grid"):
        load_experiment(bad, "smoke")
