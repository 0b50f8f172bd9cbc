"""The package code a rule runs: the checkout on PYTHONPATH, and a digest of it that
reruns a rule when its logic changes (rules/common.smk gives it as the `code` param).
"""

from __future__ import annotations

import ast
import hashlib
import os
from pathlib import Path
from typing import Iterator

# Modules that only wire a job to its log file and terminal: they change no output, so
# editing them reruns nothing.
GLUE = (Path(__file__).with_name("log.py"),)


def export_package_path(basedir: str | os.PathLike) -> None:
    """Put the checkout on PYTHONPATH so rule scripts import this package from any env.

    Scripts run in a fresh interpreter, possibly inside a --use-conda environment that
    does not have secateurs installed; importing the checkout's copy also means the code
    that runs is the code Snakemake's rerun triggers look at.
    """
    current = os.environ.get("PYTHONPATH", "")
    parts = [str(basedir)] + [p for p in current.split(os.pathsep) if p and p != str(basedir)]
    os.environ["PYTHONPATH"] = os.pathsep.join(parts)


def package_code_digest(script: str | os.PathLike, basedir: str | os.PathLike) -> str:
    """A hash of the package code a rule script runs: the `secateurs` modules it imports,
    transitively, read as syntax trees (so comments and docstrings do not count).

    Snakemake reruns a script rule when the script changes, but the script is three lines
    of wiring; the logic lives in the package. Given to a rule as a param, this digest
    makes a change to that logic rerun the rule and what depends on it, and nothing else.
    Imports are read statically: nothing is imported at DAG-building time.
    """
    root = Path(basedir)
    digest = hashlib.sha256()
    package_root = Path(__file__).resolve().parents[2]
    glue = {path.resolve().relative_to(package_root) for path in GLUE}
    for path in sorted(_package_modules(Path(script), root)):
        if path.relative_to(root) in glue:
            continue
        digest.update(str(path.relative_to(root)).encode())
        digest.update(ast.dump(_without_docstrings(ast.parse(path.read_text()))).encode())
    return digest.hexdigest()[:16]


def _package_modules(script: Path, root: Path) -> set[Path]:
    seen: set[Path] = set()
    todo = [script if script.is_absolute() else root / script]
    while todo:
        path = todo.pop()
        for name in _imported_names(ast.parse(path.read_text()), _package_of(path, root)):
            for path in _module_files(name, root):
                if path not in seen:
                    seen.add(path)
                    todo.append(path)
    return seen


def _package_of(path: Path, root: Path) -> list[str]:
    """The package a file's relative imports start from (its folder, as module parts)."""
    try:
        return list(path.relative_to(root).parent.parts)
    except ValueError:  # the script itself, outside the package
        return []


def _imported_names(tree: ast.AST, package: list[str]) -> Iterator[str]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else []
            module = ".".join([*base, *([node.module] if node.module else [])])
            yield module
            yield from (f"{module}.{alias.name}" for alias in node.names)


def _module_files(name: str, root: Path) -> list[Path]:
    """The files that importing `name` runs: each package's __init__ and the module."""
    if name != "secateurs" and not name.startswith("secateurs."):
        return []
    parts, files = name.split("."), []
    for depth in range(1, len(parts) + 1):
        base = root.joinpath(*parts[:depth])
        for candidate in (base / "__init__.py", base.with_suffix(".py")):
            if candidate.is_file():
                files.append(candidate)
    return files


def _without_docstrings(tree: ast.AST) -> ast.AST:
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                    and isinstance(body[0].value.value, str):
                node.body = body[1:] or [ast.Pass()]
    return tree
