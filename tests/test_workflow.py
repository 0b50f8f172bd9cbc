"""secateurs.workflow: the glue between rules and the package."""

from __future__ import annotations

import shutil

from secateurs.workflow.code import package_code_digest
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
    glue = root / "secateurs" / "workflow" / "log.py"
    glue.write_text(glue.read_text() + "\nCHANGED = 1\n")
    assert package_code_digest(script, root) == before


def test_progress_reaches_the_terminal_while_the_rest_goes_to_the_log(tmp_path):
    """rule_log sends a job's output to its log file; progress lines still reach the
    stderr the job started with (issue 14: the terminal was silent during training)."""
    import subprocess
    import sys

    log = tmp_path / "logs" / "job.log"
    code = ("import types, sys\n"
            "from secateurs.workflow.log import progress, rule_log\n"
            f"job = types.SimpleNamespace(log=[{str(log)!r}], rule='heal')\n"
            "with rule_log(job):\n"
            "    print('detail for the log'); print('more', file=sys.stderr)\n"
            "    progress('heal: step 3/6 (50%)')\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=REPO, check=True)
    assert result.stderr == "heal: step 3/6 (50%)\n" and result.stdout == ""
    text = log.read_text()
    assert "detail for the log" in text and "more" in text and "step 3/6" not in text


def test_progress_line():
    from secateurs.train.callbacks import progress_line

    assert progress_line("heal", 30, 60, 61_440, 3.2144, 60.0, 20) == (
        "heal: step 30/60 (50%), 61,440 tokens, loss 3.214, ETA 1m30s")
    assert progress_line("chat", 60, 60, None, None, 60.0, 60) == "chat: step 60/60 (100%)"
