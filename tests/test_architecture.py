"""The package's shape (STYLE.md habits 11 and 15): vaelab's import graph, read from the
source with ``ast`` (imports inside functions included), is acyclic between files and
between subpackages; evaluation and reports do not depend on training; an import inside a
function is for an optional dependency, or in an entry point (the command line, the
package's lazy API), which imports what a command needs when it runs so that start-up
stays cheap."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
ROOT = SRC / "vaelab"

# Imported inside functions on purpose, each for a reason the module states where it does it:
OPTIONAL = {
    "ray",  # the ray executor (pip install 'vaelab[ray]')
    "torch.utils.tensorboard",  # TensorBoard events (pip install 'vaelab[tensorboard]')
    "torch._inductor.config",  # train.compile only: Inductor takes seconds to import
    "vaelab.serve.app",  # the explorer's web layer: Starlette and uvicorn (pip install 'vaelab[serve]')
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def _resolve(module: str, node: ast.ImportFrom) -> str:
    """The absolute module an ``ImportFrom`` names (before its imported names)."""
    if not node.level:
        return node.module or ""
    is_package = MODULES[module].name == "__init__.py"
    base = module.split(".")
    base = base[:len(base) - node.level + (1 if is_package else 0)]
    return ".".join(base + ([node.module] if node.module else []))


def imports(module: str) -> list[tuple[str, ast.stmt, bool]]:
    """(imported module, node, inside a function?) for every import in ``module``.
    ``from pkg import name`` counts as importing ``pkg.name`` when that is a module."""
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    out = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            nested = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            if isinstance(child, ast.Import):
                out.extend((alias.name, child, in_function) for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                target = _resolve(module, child)
                if target == "__future__":
                    continue
                for alias in child.names:
                    sub = f"{target}.{alias.name}"
                    out.append((sub if sub in MODULES else target, child, in_function))
            visit(child, nested)

    visit(tree, False)
    return out


def module_graph() -> dict[str, set[str]]:
    return {m: {t for t, _, _ in imports(m) if t in MODULES and t != m} for m in MODULES}


def subpackage(module: str) -> str:
    """vaelab.training.loop -> vaelab.training; vaelab.config -> vaelab.config."""
    return ".".join(module.split(".")[:2])


def subpackage_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for m, targets in module_graph().items():
        graph.setdefault(subpackage(m), set()).update(subpackage(t) for t in targets if subpackage(t) != subpackage(m))
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """A cycle as [a, b, ..., a], or None."""
    state: dict[str, int] = {}  # 1: on the stack, 2: done
    stack: list[str] = []

    def dfs(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (cycle := dfs(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := dfs(node)):
            return cycle
    return None


def test_the_walk_sees_the_package():
    graph = module_graph()
    assert {"vaelab.cli", "vaelab.runs.layout", "vaelab.training.loop", "vaelab.report.figures"} <= set(graph)
    assert "vaelab.runs" in graph["vaelab.training.loop"]
    assert "vaelab.data.sources" in graph["vaelab.data.frey"]  # `from . import sources`
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_module_import_graph_is_acyclic():
    assert find_cycle(module_graph()) is None


def test_subpackage_import_graph_is_acyclic():
    assert find_cycle(subpackage_graph()) is None


@pytest.mark.parametrize("layer", ["vaelab.evaluation", "vaelab.report", "vaelab.runs"])
def test_layer_imports_nothing_from_train(layer):
    bad = sorted(f"{m} imports {t}" for m in MODULES if subpackage(m) == layer
                 for t, _, _ in imports(m) if subpackage(t) in ("vaelab.training", "vaelab.sweep"))
    assert bad == []


def test_run_directories_sit_below_their_users():
    """Run directories belong to neither train nor evaluate (STYLE.md habit 11)."""
    graph = subpackage_graph()
    for user in ("vaelab.training", "vaelab.evaluation", "vaelab.sweep", "vaelab.report"):
        assert "vaelab.runs" in graph[user], user
    assert not {"vaelab.training", "vaelab.evaluation", "vaelab.sweep", "vaelab.report", "vaelab.cli"} & graph["vaelab.runs"]


# Entry points: they import each command's (or API function's) needs when it runs.
ENTRY_POINTS = {"vaelab", "vaelab.cli"}


def test_function_level_imports_only_for_optional_dependencies_or_in_entry_points():
    bad = sorted(f"{MODULES[m].relative_to(SRC)}:{node.lineno} imports {t}"
                 for m in MODULES for t, node, in_function in imports(m)
                 if in_function and t not in OPTIONAL and m not in ENTRY_POINTS)
    assert bad == []


def test_entry_points_load_nothing_heavy_at_import():
    """``vaelab --version`` and ``import vaelab`` must not pay for torch, plotting, Ray or YAML."""
    import subprocess
    import sys

    code = ("import sys, vaelab, vaelab.cli; "
            "print(sorted(m for m in ('torch', 'matplotlib', 'scipy', 'ray', 'safetensors', 'numpy', 'yaml') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
