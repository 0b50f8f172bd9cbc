"""secateurs.io: outputs appear whole or not at all, and leave nothing behind."""

from __future__ import annotations

import pytest

from secateurs.io import DiskFullError, atomic_output, write_json


def test_killed_job_temporaries_are_removed_on_rerun(tmp_path):
    out = tmp_path / "model"
    stale = tmp_path / ".model.tmp-deadbeef"
    (stale / "sub").mkdir(parents=True)  # what a killed job leaves
    with atomic_output(out, directory=True) as tmp:
        (tmp / "config.json").write_text("{}")
    assert (out / "config.json").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["model"]


def test_failed_block_leaves_the_old_output(tmp_path):
    write_json({"v": 1}, tmp_path / "a.json")
    with pytest.raises(RuntimeError):
        with atomic_output(tmp_path / "a.json") as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed")
    assert (tmp_path / "a.json").read_text().strip().endswith("}")
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]


def test_full_disk_names_the_place_and_the_fix(tmp_path):
    """/dev/full fails every write with ENOSPC, as a full disk does."""
    with pytest.raises(DiskFullError, match=r"no space left on the disk of .* Fix: free space"):
        with atomic_output(tmp_path / "big.bin") as tmp:
            tmp.write_bytes(b"x" * 1000)
            with open("/dev/full", "wb") as full:
                full.write(b"y" * 100_000)
                full.flush()
    assert list(tmp_path.iterdir()) == []
