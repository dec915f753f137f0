"""The README's documented defaults are the code's: its config block is parsed and
compared with ``RunConfig()`` key by key (issue 12: it once showed relu and 100 epochs)."""

import dataclasses
import re
from pathlib import Path

import yaml

from vaelab.config import RunConfig, _to_plain

README = Path(__file__).resolve().parents[1] / "README.md"


def config_block() -> dict:
    text = README.read_text(encoding="utf-8")
    section = text.split("## Configs", 1)[1]
    block = re.search(r"```yaml\n(.*?)```", section, re.S)
    assert block, "README's Configs section has no ```yaml block"
    return yaml.safe_load(block.group(1))


def test_readme_config_block_matches_the_defaults():
    shown = config_block()
    assert shown.pop("preset", None) is not None  # the block also shows how to start from a preset
    # Every key, the ones a run id leaves out at their "as before" value included
    # (RunConfig.QUIET_DEFAULTS), except the optional select section.
    defaults = {k: v for k, v in _to_plain(dataclasses.asdict(RunConfig())).items() if k != "select"}
    assert sorted(shown) == sorted(defaults), "README's config block must show every section"
    for section, values in defaults.items():
        if not isinstance(values, dict):
            assert shown[section] == values, f"README shows {section}: {shown[section]!r}, the code {values!r}"
            continue
        assert sorted(shown[section]) == sorted(values), \
            f"README's {section} keys {sorted(shown[section])} differ from the code's {sorted(values)}"
        for key, value in values.items():
            assert shown[section][key] == value, \
                f"README shows {section}.{key}: {shown[section][key]!r}, the code's default is {value!r}"


def test_readme_block_is_a_valid_config():
    shown = config_block()
    shown.pop("preset")
    assert RunConfig.from_dict(shown) == RunConfig()


def python_block() -> str:
    text = README.read_text(encoding="utf-8")
    section = text.split("## Use from Python", 1)[1]
    block = re.search(r"```python\n(.*?)```", section, re.S)
    assert block, "README's 'Use from Python' section has no ```python block"
    return block.group(1)


def test_readme_python_block_runs_as_written(tmp_path, monkeypatch, data_dir, capsys):
    """The quick start, executed as a reader would paste it (in an empty folder, with the
    data where VAELAB_DATA points): it trains, evaluates, exports and samples."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("VAELAB_DATA", str(data_dir))
    scope: dict = {}
    exec(compile(python_block(), "README.md", "exec"), scope)
    numbers, images = scope["numbers"], scope["images"]
    assert numbers["k"] == 100 and numbers["n"] == 1000
    # two epochs of the tuned VAE on 10,000 images: well above the mean-image start (~ -206),
    # below a converged model (~ -80)
    assert -140 < numbers["elbo"] < -85 and numbers["log_likelihood"] >= numbers["elbo"]
    assert tuple(images.shape) == (16, 1, 28, 28) and 0 <= float(images.min()) <= float(images.max()) <= 1
    assert (tmp_path / "bundles" / "first" / "model.safetensors").is_file()
    assert "ELBO" in capsys.readouterr().out
