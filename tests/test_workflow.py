"""secateurs.workflow: the glue between rules and the package."""

from __future__ import annotations

import shutil

from secateurs.workflow import package_code_digest
from workflow import REPO


def _copy(tmp_path):
    for name in ("secateurs", "scripts"):
        shutil.copytree(REPO / name, tmp_path / name,
                        ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path


def test_digest_follows_the_package_code_a_script_imports(tmp_path):
    root = _copy(tmp_path)
    mix, report = root / "scripts" / "mix.py", root / "scripts" / "report.py"
    before = package_code_digest(mix, root), package_code_digest(report, root)
    logic = root / "secateurs" / "data" / "mix.py"
    logic.write_text(logic.read_text() + "\nCHANGED = 1\n")
    after = package_code_digest(mix, root), package_code_digest(report, root)
    assert after[0] != before[0]  # mix imports secateurs.data.mix
    assert after[1] == before[1]  # the report does not


def test_comments_and_docstrings_do_not_count(tmp_path):
    root = _copy(tmp_path)
    script = root / "scripts" / "mix.py"
    before = package_code_digest(script, root)
    logic = root / "secateurs" / "data" / "mix.py"
    text = logic.read_text()
    logic.write_text('"""Another module docstring."""\n# a comment\n' + text.split('"""', 2)[2])
    assert package_code_digest(script, root) == before


def test_shared_bottom_counts_for_every_stage(tmp_path):
    root = _copy(tmp_path)
    scripts = sorted((root / "scripts").glob("*.py"))
    before = [package_code_digest(s, root) for s in scripts]
    io = root / "secateurs" / "io.py"
    io.write_text(io.read_text() + "\nCHANGED = 1\n")
    after = [package_code_digest(s, root) for s in scripts]
    assert all(a != b for a, b in zip(after, before))


def test_the_logging_glue_does_not_count(tmp_path):
    root = _copy(tmp_path)
    script = root / "scripts" / "mix.py"
    before = package_code_digest(script, root)
    glue = root / "secateurs" / "workflow.py"
    glue.write_text(glue.read_text() + "\nCHANGED = 1\n")
    assert package_code_digest(script, root) == before
