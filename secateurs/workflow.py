"""Glue between Snakemake rule scripts and the package: logging to the rule's log file.

A rule script is three lines: open `rule_log(snakemake)`, call one package function with
the rule's inputs, params and outputs. Everything a job prints, including C-level output
of tokenizers and torch and tqdm progress bars, lands in the rule's `log:` file, and a
failure leaves its traceback there.
"""

from __future__ import annotations

import ast
import contextlib
import hashlib
import logging
import os
import sys
from pathlib import Path
from typing import Iterator


_terminal: list = []  # the job's original stderr while rule_log redirects it


def progress(line: str) -> None:
    """One short progress line for the person at the terminal (not only the log file):
    inside `rule_log`, to the stderr the job had before its redirection, else to stderr."""
    stream = _terminal[-1] if _terminal else sys.stderr
    try:
        stream.write(line.rstrip("\n") + "\n")
        stream.flush()
    except (OSError, ValueError):  # a closed terminal must not fail a training job
        pass


@contextlib.contextmanager
def rule_log(snakemake) -> Iterator[None]:
    """Send stdout, stderr and logging of this job to `snakemake.log[0]`; `progress`
    lines still reach the terminal."""
    log_path = Path(snakemake.log[0])
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "a", buffering=1, encoding="utf-8") as log_file:
        saved = os.dup(1), os.dup(2)
        sys.stdout.flush(), sys.stderr.flush()
        os.dup2(log_file.fileno(), 1)
        os.dup2(log_file.fileno(), 2)
        logging.basicConfig(level=logging.INFO, stream=sys.stderr, force=True,
                            format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        _terminal.append(os.fdopen(os.dup(saved[1]), "w", buffering=1, encoding="utf-8"))
        try:
            yield
        except BaseException:
            logging.getLogger("secateurs").exception("rule %s failed", snakemake.rule)
            raise
        finally:
            _terminal.pop().close()
            sys.stdout.flush(), sys.stderr.flush()
            os.dup2(saved[0], 1), os.dup2(saved[1], 2)
            os.close(saved[0]), os.close(saved[1])


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
    # this module only wires a job to its log and terminal: it changes no output
    glue = Path(__file__).resolve().relative_to(Path(__file__).resolve().parents[1])
    for path in sorted(_package_modules(Path(script), root)):
        if path.relative_to(root) == glue:
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
