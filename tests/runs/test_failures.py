"""Failure handling: a failed job says why, is retried where the profile asks, and leaves
no partial output; the profiles carry the retry settings.

The failing job is chat_data pointed at a broken chat file (a `.jsonl.gz` that is not
gzip): one cheap job in a scratch workdir, no model involved.
"""

from __future__ import annotations

import gzip
import json

import pytest
import yaml

from workflow import QUICK, REPO, snakemake

TARGET = "results/data/chat/train.jsonl"


def run_chat_data(work, chat_file, *args):
    config = work / "chat.yaml"
    config.write_text(yaml.safe_dump({"chat": {"data": [{"path": str(chat_file),
                                                          "format": "sharegpt"}]}}))
    result = snakemake(work, *args, "--", TARGET, configfiles=(QUICK, config), check=False)
    return result, result.stdout + result.stderr


@pytest.fixture(scope="module")
def failed_run(tmp_path_factory):
    work = tmp_path_factory.mktemp("failure")
    broken = work / "broken.jsonl.gz"
    broken.write_bytes(b"this is not gzip\n")
    result, output = run_chat_data(work, broken, "--retries", "1")
    return work, broken, result, output


def test_failed_job_stops_the_run_and_leaves_no_output(failed_run):
    work, _, result, _ = failed_run
    assert result.returncode != 0
    assert not (work / TARGET).exists()
    assert not (work / "results" / "data" / "chat" / "stats.json").exists()


def test_failed_job_log_names_rule_and_cause(failed_run):
    """The job's log ends with the error; Snakemake prints that log (show-failed-logs in
    profiles/default) so the cause is on the console too, not only its path."""
    work, _, _, output = failed_run
    log = (work / "logs" / "chat_data" / "chat_data.log").read_text()
    assert "rule chat_data failed" in log
    assert "BadGzipFile: Not a gzipped file" in log
    assert "Error in rule chat_data" in output and "BadGzipFile" in output


def test_failed_job_is_retried(failed_run):
    _, _, _, output = failed_run
    assert "Trying to restart job" in output
    assert output.count("Error in rule chat_data") == 2  # the first try and the retry


def test_failed_job_log_names_the_file(failed_run):
    work, broken, _, _ = failed_run
    assert str(broken) in (work / "logs" / "chat_data" / "chat_data.log").read_text()


def test_chat_file_without_one_usable_row_fails(tmp_path):
    broken = tmp_path / "broken.jsonl.gz"
    with gzip.open(broken, "wt") as handle:
        handle.write("this is not json\n")
        handle.write(json.dumps({"conversations": [{"from": "human", "value": "hi"}]}) + "\n")
    result, _ = run_chat_data(tmp_path, broken)
    assert result.returncode != 0
    assert str(broken) in (tmp_path / "logs" / "chat_data" / "chat_data.log").read_text()


@pytest.mark.parametrize("profile", ["default", "slurm"])
def test_profile_lines_are_commented_and_set_retries(profile):
    path = REPO / "profiles" / profile / "config.yaml"
    settings = yaml.safe_load(path.read_text())
    assert isinstance(settings["retries"], int)
    if profile == "slurm":
        assert settings["retries"] >= 1  # node loss and preemption are transient there
    uncommented = [line for line in path.read_text().splitlines()
                   if line.strip() and "#" not in line]
    assert uncommented == []
