"""config.resolve_dict's per-latent preset settings (``by_latent``), and strictness."""

import pytest

from vaelab.config import PRESET_DIR, RunConfig, load_config, preset_dict, preset_names, read_yaml, resolve_dict
from vaelab.errors import ConfigError

STUDY_PRESETS = {"vae", "vae-tuned", "vae-cnn", "iwae", "dvae", "beta-vae", "cvae", "vampprior", "hvae"}


def test_every_study_preset_exists_loads_and_describes_itself():
    assert STUDY_PRESETS <= set(preset_names())
    for name in preset_names():
        assert read_yaml(PRESET_DIR / f"{name}.yaml").get("description"), name
        for latent in (3, 200):
            cfg = load_config(preset=name, overrides={"model.latent": latent})
            assert cfg.name == name and cfg.model.latent == latent


@pytest.mark.parametrize("latent, lr", [(3, 0.01), (5, 0.001), (20, 0.001), (200, 0.001)])
def test_vae_tuned_learning_rate_per_latent(latent, lr):
    # The study's sec. 4.2.1: 1e-3, except 1e-2 for latent 3.
    assert load_config(preset="vae-tuned", overrides={"model.latent": latent}).optim.lr == lr


@pytest.mark.parametrize("latent, lr", [(3, 0.01), (10, 0.01), (20, 0.01), (200, 0.001)])
def test_vae_cnn_learning_rate_per_latent(latent, lr):
    # The study's sec. 4.2.2: 1e-2 for latent 3, 5, 10, 20 and 1e-3 for 200.
    assert load_config(preset="vae-cnn", overrides={"model.latent": latent}).optim.lr == lr


def test_explicit_overrides_win_over_by_latent():
    cfg = load_config(preset="vae-tuned", overrides={"model.latent": 3, "optim.lr": 0.005})
    assert cfg.optim.lr == 0.005
    assert cfg.optim.betas == (0.9, 0.99)  # the rest of the preset still applies


def test_config_file_layers_and_its_own_by_latent():
    # A file over a preset: its plain keys beat the preset's per-latent entry, and its own
    # by_latent applies above its plain keys.
    file_data = {"preset": "vae-tuned", "optim": {"lr": 0.002}, "by_latent": {"7": {"optim": {"eps": 1e-6}}}}
    at3 = RunConfig.from_dict(resolve_dict(file_data, overrides={"model.latent": 3}))
    assert at3.optim.lr == 0.002 and at3.optim.eps == 1e-8
    at7 = RunConfig.from_dict(resolve_dict(file_data, overrides={"model.latent": 7}))
    assert at7.optim.lr == 0.002 and at7.optim.eps == 1e-6


def test_latent_from_the_preset_itself_selects_the_entry():
    data = {"model": {"latent": 3}, "by_latent": {3: {"optim": {"lr": 0.05}}}}
    assert RunConfig.from_dict(resolve_dict(data)).optim.lr == 0.05
    # and the default latent (20) when nobody sets one
    data = {"by_latent": {20: {"optim": {"lr": 0.04}}}}
    assert RunConfig.from_dict(resolve_dict(data)).optim.lr == 0.04


def test_resolved_dict_has_no_by_latent_left():
    out = resolve_dict(preset="vae-tuned", overrides={"model.latent": 3})
    assert "by_latent" not in out
    assert RunConfig.from_dict(out).to_dict()["optim"]["lr"] == 0.01  # saved with the run as used


@pytest.mark.parametrize("table, match", [
    ([1, 2], "expected a mapping"),
    ({"three": {"optim": {"lr": 0.1}}}, "latent sizes"),
    ({3: 0.1}, "mapping of settings"),
    ({3: {"model": {"latent": 5}}}, "cannot set the latent"),
])
def test_malformed_by_latent_is_a_config_error(table, match):
    with pytest.raises(ConfigError, match=match):
        resolve_dict({"by_latent": table})


def test_unknown_key_inside_a_by_latent_entry_is_caught():
    with pytest.raises(ConfigError, match="optim.learning_rate"):
        RunConfig.from_dict(resolve_dict({"by_latent": {20: {"optim": {"learning_rate": 0.1}}}}))


def test_strictness_unknown_keys_types_and_values():
    with pytest.raises(ConfigError, match="unknown config key 'model.latnet'"):
        load_config(overrides={"model.latnet": 3})
    with pytest.raises(ConfigError, match="model.latent"):
        load_config(overrides={"model.latent": "three"})
    with pytest.raises(ConfigError, match="model.pseudo_inputs"):
        load_config(overrides={"model.pseudo_inputs": 0})
    with pytest.raises(ConfigError, match="unknown model preset"):
        preset_dict("no-such-preset")


# --- names checked at load -----------------------------------------------------------------


def test_a_misspelt_name_is_refused_at_load_with_a_did_you_mean(tmp_path):
    import subprocess
    import sys

    from vaelab.parts import check_names
    from vaelab.sweep.experiment import load_experiment

    with pytest.raises(ConfigError, match=r"model.prior': unknown prior 'vmap' \(did you mean 'vamp'\?\); "
                                          r"choose from normal, vamp"):
        check_names(RunConfig.from_dict({"model": {"prior": "vmap"}}))
    exp = tmp_path / "e.yaml"
    exp.write_text("name: e\nbase: {data.dataset: cifar}\nruns: {sweep: {model.latent: [3]}}\n"
                   "efforts: {smoke: {}}\n")
    with pytest.raises(ConfigError, match="data.dataset': unknown dataset 'cifar'"):
        load_experiment(exp, "smoke")
    out = subprocess.run([sys.executable, "-m", "vaelab.cli", "train", "--set", "model.prior=vmap",
                          "--out", str(tmp_path / "run")], capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == 2 and "did you mean 'vamp'" in out.stderr and len(out.stderr.splitlines()) == 1
    assert not (tmp_path / "run").exists()
    out = subprocess.run([sys.executable, "-m", "vaelab.cli", "sweep", str(exp), "--effort", "smoke",
                          "--out", str(tmp_path / "sw")], capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == 2 and "unknown dataset 'cifar'" in out.stderr
    assert not (tmp_path / "sw").exists()
