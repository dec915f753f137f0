"""The documentation's claims are the code's: docs/configs.md's config block is parsed and
compared with ``RunConfig()`` key by key, and its table of part kinds with the config keys
the part tables check."""

import dataclasses
import re
from pathlib import Path

import yaml

from vaelab.config import RunConfig, _to_plain
from vaelab.parts import NAMED_FIELDS

DOCS = Path(__file__).resolve().parents[1] / "docs"


def config_block() -> dict:
    text = (DOCS / "configs.md").read_text(encoding="utf-8")
    block = re.search(r"```yaml\n(.*?)```", text, re.S)
    assert block, "docs/configs.md has no ```yaml block"
    return yaml.safe_load(block.group(1))


def test_config_block_matches_the_defaults():
    shown = config_block()
    assert shown.pop("preset", None) is not None  # the block also shows how to start from a preset
    # Every key, the ones a run id leaves out at their "as before" value included
    # (RunConfig.QUIET_DEFAULTS), except the optional select section.
    defaults = {k: v for k, v in _to_plain(dataclasses.asdict(RunConfig())).items() if k != "select"}
    assert sorted(shown) == sorted(defaults), "the config block must show every section"
    for section, values in defaults.items():
        if not isinstance(values, dict):
            assert shown[section] == values, f"docs show {section}: {shown[section]!r}, the code {values!r}"
            continue
        assert sorted(shown[section]) == sorted(values), \
            f"docs' {section} keys {sorted(shown[section])} differ from the code's {sorted(values)}"
        for key, value in values.items():
            assert shown[section][key] == value, \
                f"docs show {section}.{key}: {shown[section][key]!r}, the code's default is {value!r}"


def test_config_block_is_a_valid_config():
    shown = config_block()
    shown.pop("preset")
    assert RunConfig.from_dict(shown) == RunConfig()


def test_parts_table_names_every_key_a_part_table_checks():
    text = (DOCS / "configs.md").read_text(encoding="utf-8").split("## Parts", 1)[1].split("\n\n")
    table = next(block for block in text if block.startswith("| kind |"))
    keys = set(re.findall(r"`([a-z]+\.[a-z_]+)`", table))
    assert keys == set(NAMED_FIELDS)


def test_docs_link_only_to_files_that_exist():
    root = DOCS.parent
    for page in [root / "README.md", *sorted(DOCS.glob("*.md"))]:
        for target in re.findall(r"`((?:docs|results|tests|benchmarks|src)/[\w./-]+)`|\]\(([\w./-]+)\)",
                                 page.read_text(encoding="utf-8")):
            path = next(t for t in target if t)
            assert (root / path).exists(), f"{page.name} points at {path}, which does not exist"
