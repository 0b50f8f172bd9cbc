"""Glue between Snakemake rule scripts and the package: logging to the rule's log file.

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


@contextlib.contextmanager
def rule_log(snakemake) -> Iterator[None]:
    """Send stdout, stderr and logging of this job to `snakemake.log[0]`."""
    log_path = Path(snakemake.log[0])
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "a", buffering=1, encoding="utf-8") as log_file:
        saved = os.dup(1), os.dup(2)
        sys.stdout.flush(), sys.stderr.flush()
        os.dup2(log_file.fileno(), 1)
        os.dup2(log_file.fileno(), 2)
        logging.basicConfig(level=logging.INFO, stream=sys.stderr, force=True,
                            format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        try:
            yield
        except BaseException:
            logging.getLogger("secateurs").exception("rule %s failed", snakemake.rule)
            raise
        finally:
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
