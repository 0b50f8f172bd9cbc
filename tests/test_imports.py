"""Imports go down, never up, never in a circle (STYLE.md): the shared bottom imports no
stage, a stage imports only stages before it in the pipeline, and only the entry points
(config, cli, __main__) import everything."""

from __future__ import annotations

import ast
from pathlib import Path

from workflow import REPO

PACKAGE = REPO / "secateurs"

# Lower imports nothing higher. Within one subpackage modules import each other freely.
LAYERS = [
    {"secateurs", "secateurs.io", "secateurs.settings", "secateurs.devices",
     "secateurs.documents", "secateurs.locations", "secateurs.chatml", "secateurs.workflow"},
    {"secateurs.base_model"},
    {"secateurs.data"},
    {"secateurs.prune"},
    {"secateurs.train"},
    {"secateurs.evaluate"},
    {"secateurs.demo"},
    {"secateurs.config"},
    {"secateurs.cli"},
    {"secateurs.__main__"},
]


def _module(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _unit(module: str) -> str:
    """The layer entry a module belongs to: its subpackage, or the top-level module."""
    parts = module.split(".")
    candidate = ".".join(parts[:2])
    return candidate if any(candidate in layer for layer in LAYERS) else parts[0]


def _rank(module: str) -> int:
    unit = _unit(module)
    for rank, layer in enumerate(LAYERS):
        if unit in layer:
            return rank
    raise AssertionError(f"{module}: not placed in a layer of tests/test_imports.py")


def _imports(path: Path, *, top_level_only: bool = False):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    nodes = tree.body if top_level_only else ast.walk(tree)
    for node in nodes:
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            yield node.lineno, [n for n in names if _is_module(n)] or [node.module]
        elif isinstance(node, ast.Import):
            yield node.lineno, [a.name for a in node.names]


def _is_module(name: str) -> bool:
    base = REPO.joinpath(*name.split("."))
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def _package_files():
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def test_imports_go_down():
    upward = []
    for path in _package_files():
        me = _module(path)
        for line, names in _imports(path):
            for name in names:
                if name != "secateurs" and not name.startswith("secateurs."):
                    continue
                if _unit(name) != _unit(me) and _rank(name) > _rank(me):
                    upward.append(f"{path.relative_to(REPO)}:{line} imports {name}")
    assert upward == []


def test_no_import_cycles():
    """Module-level imports form no cycle (function-level imports would only hide one)."""
    graph = {}
    for path in _package_files():
        targets = set()
        for _, names in _imports(path, top_level_only=True):
            targets |= {n for n in names if n.startswith("secateurs.") and _is_module(n)}
        graph[_module(path)] = targets - {_module(path)}
    state: dict[str, int] = {}

    def visit(node: str, stack: list[str]) -> list[str] | None:
        state[node] = 1
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 1:
                return stack + [node, target]
            if target not in state and (cycle := visit(target, stack + [node])):
                return cycle
        state[node] = 2
        return None

    for module in sorted(graph):
        if module not in state:
            assert visit(module, []) is None


def test_no_function_level_import_between_modules_that_import_each_other():
    """A function-level import is for a heavy or optional dependency, never to dodge a
    cycle: two package modules never import each other, at any level."""
    edges = set()
    for path in _package_files():
        me = _module(path)
        for _, names in _imports(path):
            edges |= {(me, n) for n in names if n.startswith("secateurs.") and _is_module(n)
                      and n != me}
    assert sorted((a, b) for a, b in edges if (b, a) in edges and a < b) == []
