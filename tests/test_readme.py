"""The README as a newcomer meets it: short, its commands real, its Python quick start and
its plugin example run as written, and its results table the shipped results' numbers."""

import csv
import re
import subprocess
import sys
from pathlib import Path

from vaelab.cli import build_parser
from vaelab.efforts import EFFORTS

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"


def section(title: str) -> str:
    return README.read_text(encoding="utf-8").split(f"## {title}", 1)[1].split("\n## ", 1)[0]


def test_readme_is_short():
    assert len(README.read_text(encoding="utf-8").splitlines()) <= 200


def test_quick_start_commands_are_real():
    block = re.search(r"```bash\n(.*?)```", section("Quick start"), re.S).group(1)
    assert "-c constraints.txt" in block and (ROOT / "constraints.txt").is_file()
    for effort in re.findall(r"--effort ([a-z]+)\b", README.read_text(encoding="utf-8")):
        assert effort in EFFORTS, effort
    assert "python -m pytest -q" in block


def test_command_table_names_real_subcommands():
    commands = build_parser()._subparsers._group_actions[0].choices
    named = set(re.findall(r"^\| `vaelab (\w+)", section("Commands"), re.M))
    named |= set(re.findall(r"`vaelab (\w+)`", section("Commands")))
    assert named and named <= set(commands)
    assert set(commands) <= named, f"not in the README's table: {sorted(set(commands) - named)}"


def test_results_table_is_the_shipped_table1():
    shipped = {r["row_label"]: r for r in csv.DictReader((ROOT / "results/table1/table1.csv").open(encoding="utf-8"))
               if r["column"] == "20"}
    lines = [line for line in section("Results").splitlines() if line.startswith("| ") and "---" not in line][1:]
    assert len(lines) == len(shipped)
    for line in lines:
        label, elbo, study, ll = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]
        row = shipped[label.replace(" (log p(x \\| y))", "")]
        assert elbo == f"{float(row['test_elbo']):.2f}" and ll == f"{float(row['test_log_likelihood']):.2f}", label
        assert study == (f"{float(row['reference']):.2f}" if row["reference"] else ""), label


def test_add_a_part_example_registers_the_part():
    block = re.search(r"```python\n(.*?)```", section("Add a part"), re.S).group(1)
    check = block + "\nfrom vaelab.parts import table\nassert 'laplace' in table('prior').names()\n"
    subprocess.run([sys.executable, "-c", check], check=True, cwd=ROOT)


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
