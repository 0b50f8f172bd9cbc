"""Running the real workflow from tests: Snakemake as a subprocess in a scratch directory."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = Path(sys.executable).with_name("snakemake")
QUICK = REPO / "tests" / "configs" / "quick.yaml"


def snakemake(workdir: Path, *args: str, configfiles: tuple = (), check: bool = True,
              timeout: int = 1500, over_demo: bool = True,
              echo=None) -> subprocess.CompletedProcess:
    """Run the workflow of this checkout with `workdir` as its working directory.

    `configfiles` are layered over the demo config (config/config.yaml) unless `over_demo`
    is False; then they are the whole config, as a recipe given with --configfile is.
    `echo(line)`, when given, receives Snakemake's progress lines as they come (which rule
    starts, how many steps are done, training progress), so a long run is not silent.
    """
    files = [str(REPO / "config" / "config.yaml")] if over_demo else []
    files += [str(f) for f in configfiles]
    cmd = [str(SNAKEMAKE), "--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir),
           "--cores", "2", "--configfile", *files, *args]
    if echo is None:
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    else:
        result = _run_echoing(cmd, echo, timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"snakemake failed ({result.returncode}):\n{result.stdout[-4000:]}"
                             f"\n{result.stderr[-6000:]}")
    return result


PROGRESS = re.compile(r"^(rule \w+:|localrule \w+:|\d+ of \d+ steps|\w+: step \d+/)")


def _run_echoing(cmd: list[str], echo, timeout: int) -> subprocess.CompletedProcess:
    """subprocess.run with stderr read line by line; progress lines go to `echo`."""
    import tempfile
    import time

    deadline = time.monotonic() + timeout
    with tempfile.TemporaryFile("w+") as out, subprocess.Popen(
            cmd, stdout=out, stderr=subprocess.PIPE, text=True) as proc:
        lines = []
        for line in proc.stderr:
            lines.append(line)
            if PROGRESS.match(line):
                echo(line.rstrip())
            if time.monotonic() > deadline:
                proc.kill()
                raise subprocess.TimeoutExpired(cmd, timeout)
        proc.wait()
        out.seek(0)
        return subprocess.CompletedProcess(cmd, proc.returncode, out.read(), "".join(lines))


def copy_run(run: Path, dest: Path) -> Path:
    """A finished run's workdir copied to `dest` (Snakemake's records included, so nothing
    reruns by itself), without its training checkpoints, which the copy never resumes."""
    shutil.copytree(run, dest, symlinks=True, ignore=shutil.ignore_patterns("checkpoints"),
                    dirs_exist_ok=True)
    return dest


def planned_jobs(output: str) -> dict[str, int]:
    """Rule -> job count from the 'Job stats' table of a dry run."""
    jobs: dict[str, int] = {}
    block = output.split("Job stats:", 1)
    if len(block) < 2:
        return jobs
    for line in block[1].splitlines():
        match = re.fullmatch(r"\s*([A-Za-z_][\w]*)\s+(\d+)\s*", line)
        if match and match.group(1) != "total":
            jobs[match.group(1)] = int(match.group(2))
        elif jobs and not line.strip():
            break
    return jobs
