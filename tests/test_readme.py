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
