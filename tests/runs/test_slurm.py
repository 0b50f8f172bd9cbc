"""The workflow on a real SLURM cluster: two nodes on localhost, started for this test.

tests/slurm/start.sh installs slurm-wlm and munge (Debian) when missing, writes a
cgroup-free slurm.conf and starts munged, slurmctld and two slurmd (node1, node2); the
fixture stops what it started. The corpus half of the demo (extraction, OpenCC conversion, Cosmopedia sample,
tokenizer, 2:1 mix, packing) and the chat data run through snakemake-executor-plugin-slurm
with the test profile (tests/slurm/profile: squeue status checks, as STACK.md found
needed without accounting; the six corpus jobs grouped into one SLURM job whose rules run
as job steps). Evidence that they ran under SLURM: the job ids Snakemake reports, SLURM's
own record of each job (`scontrol show job`: COMPLETED, exit 0, our workdir), and the
SLURM job logs naming every rule. The outputs must equal, byte for byte, those of the
local demo run (the `demo_run` fixture, same config), except timings in stats files.

Healing on two nodes: a copy of the local demo run reruns `heal` with `num_nodes: 2`
(tests/configs/multinode.yaml). SLURM must record one job on both nodes, srun must start a
rank on each, and the ranks must train as one world (twice the tokens a step, the same
budget in half the steps).

Skips when SLURM cannot be installed or started (not root, no apt, no network).
"""

from __future__ import annotations

import csv
import json
import re
import subprocess
from pathlib import Path

import pytest

from workflow import QUICK, REPO, copy_run, snakemake

pytestmark = pytest.mark.slow

SLURM = REPO / "tests" / "slurm"
PROFILE = SLURM / "profile"
SLURM_CONFIG = REPO / "tests" / "configs" / "slurm.yaml"
MULTINODE_CONFIG = REPO / "tests" / "configs" / "multinode.yaml"
TARGETS = ("results/data/packed", "results/data/chat/train.jsonl")
RULES = {"wiki_extract", "wiki_convert", "text_sample", "demo_tokenizer", "mix",
         "tokenize", "chat_data"}
# Output trees compared with the local run; stats files carry wall-clock timings.
COMPARED = ("results/data", "results/demo/tokenizer")
TIMING = re.compile(r"seconds|per_second")


@pytest.fixture(scope="module")
def slurm_cluster():
    """A running single-node SLURM; stopped afterwards if this fixture started it."""
    started = subprocess.run(["bash", str(SLURM / "start.sh")], capture_output=True,
                             text=True, timeout=600)
    if started.returncode != 0:
        pytest.skip(f"no SLURM cluster (tests/slurm/start.sh exit {started.returncode}): "
                    f"{started.stderr.strip()[-500:]}")
    yield
    subprocess.run(["bash", str(SLURM / "stop.sh")], check=True, timeout=120)


@pytest.fixture(scope="module")
def slurm_run(slurm_cluster, demo_run, tmp_path_factory):
    """The corpus and chat data on SLURM, given a bare `--cache` as users will."""
    work = tmp_path_factory.mktemp("slurm-run")
    cache = tmp_path_factory.mktemp("slurm-cache")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("SNAKEMAKE_OUTPUT_CACHE", str(cache))
        result = snakemake(work, "--profile", str(PROFILE), "--cache", "--", *TARGETS,
                           configfiles=(QUICK, SLURM_CONFIG), timeout=1200)
    return work, result.stdout + result.stderr, cache


def submitted_jobs(output: str) -> dict[str, Path]:
    """SLURM job id -> its log, from Snakemake's 'submitted with SLURM jobid' lines."""
    found = re.findall(r"submitted with SLURM jobid (\d+) \(log: (\S+)\)", output)
    return {job: Path(log) for job, log in found}


def slurm_record(job: str) -> dict[str, str]:
    """`scontrol show job` as key -> value (kept by slurmctld for MinJobAge after the end)."""
    text = subprocess.run(["scontrol", "show", "job", job], capture_output=True, text=True,
                          check=True).stdout
    return dict(re.findall(r"(\w+)=(\S*)", text))


def test_jobs_ran_as_slurm_jobs(slurm_run):
    work, output, _ = slurm_run
    jobs = submitted_jobs(output)
    assert len(jobs) == 2, output[-3000:]  # the corpus group job and chat_data
    for job, log in jobs.items():
        record = slurm_record(job)
        assert record["JobState"] == "COMPLETED" and record["ExitCode"] == "0:0", record
        assert Path(record["WorkDir"]) == work
        assert Path(record["StdOut"]) == log and log.is_relative_to(work / ".snakemake")
    ran = {rule for log in jobs.values()
           for rule in re.findall(r"^rule (\w+):", log.read_text(), flags=re.M)}
    assert ran == RULES


def test_cache_is_left_alone_by_slurm_jobs(slurm_run):
    """`--cache` on SLURM computes everything and stores nothing, and says so in the README.

    Snakemake 9.27 hands a bare `--cache` on to the jobs it spawns only as a non-empty rule
    list (format_cli_arg drops []), and a spawned job's DAG holds that job alone, so it
    could not compute the provenance hash the main process computes (it would hash a
    directory made upstream as a file and fail). The cached rules' outputs are plain
    outputs of the jobs; this test notices if a later Snakemake starts caching here.
    """
    work, output, cache = slurm_run
    assert "to cache" not in output
    assert not any(cache.iterdir())
    packed = work / "results" / "data" / "packed"
    assert packed.is_dir() and not packed.is_symlink()


def test_slurm_outputs_equal_the_local_run(slurm_run, demo_run):
    work, _, _ = slurm_run
    compared = 0
    for tree in COMPARED:
        for local in sorted((demo_run / tree).rglob("*")):
            if not local.is_file():
                continue
            remote = work / local.relative_to(demo_run)
            assert remote.is_file(), f"{remote} is missing"
            if local.name.endswith("stats.json"):
                assert without_timings(remote) == without_timings(local), remote
            else:
                assert remote.read_bytes() == local.read_bytes(), f"{remote} differs"
            compared += 1
    assert compared >= 15


@pytest.fixture(scope="module")
def two_node_heal(slurm_cluster, demo_run, tmp_path_factory):
    """A copy of the local demo run whose healing reruns on two SLURM nodes."""
    work = copy_run(demo_run, tmp_path_factory.mktemp("slurm-two-nodes"))
    (work / "logs" / "heal" / "heal.log").unlink()
    result = snakemake(work, "--profile", str(PROFILE), "--", "results/models/healed",
                       configfiles=(QUICK, SLURM_CONFIG, MULTINODE_CONFIG), timeout=1200)
    return work, result.stdout + result.stderr


def test_healing_spans_two_nodes(two_node_heal, demo_run):
    work, output = two_node_heal
    jobs = submitted_jobs(output)
    assert len(jobs) == 1, output[-3000:]  # heal alone: nothing upstream changed
    job, slurm_log = next(iter(jobs.items()))
    record = slurm_record(job)
    assert record["JobState"] == "COMPLETED" and record["ExitCode"] == "0:0", record
    assert record["NumNodes"] == "2" and record["NodeList"] == "node[1-2]", record
    # two ranks share the log: progress bars may interleave mid-character
    heal_log = (work / "logs" / "heal" / "heal.log").read_text(errors="replace")
    assert "launching 2 x 1 processes: srun --nodes 2" in heal_log, slurm_log.read_text()[-3000:]
    placed = set(re.findall(r"rank (\d) of 2 \(local rank 0\) on node (node\d)", heal_log))
    assert {node for _, node in placed} == {"node1", "node2"}, heal_log[-3000:]
    assert {rank for rank, _ in placed} == {"0", "1"}
    local, remote = (train_log(d / "results" / "train_logs" / "heal.csv") for d in (demo_run, work))
    assert remote[-1]["tokens_seen"] == local[-1]["tokens_seen"]  # the same token budget
    assert remote[-1]["step"] * 2 == local[-1]["step"]  # in half the steps: a world of two


def train_log(path: Path) -> list[dict[str, int]]:
    return [{"step": int(row["step"]), "tokens_seen": int(row["tokens_seen"])}
            for row in csv.DictReader(path.open())]


def without_timings(path: Path) -> dict:
    return {k: v for k, v in json.loads(path.read_text()).items() if not TIMING.search(k)}


def test_scripts_are_present():
    """The scripts CI calls exist and are valid bash (the test above may have skipped)."""
    for script in ("install.sh", "start.sh", "stop.sh"):
        assert subprocess.run(["bash", "-n", str(SLURM / script)]).returncode == 0
