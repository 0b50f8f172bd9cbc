"""A rule job's output: everything to the rule's log file, progress lines to the terminal.

A rule script is three lines: open `rule_log(snakemake)`, call one package function with
the rule's inputs, params and outputs. Everything a job prints, including C-level output
of tokenizers and torch and tqdm progress bars, lands in the rule's `log:` file, and a
failure leaves its traceback there.
"""

from __future__ import annotations

import contextlib
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
