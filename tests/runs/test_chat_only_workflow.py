"""A recipe without pruning and healing, run for real on the demo's data at reduced budgets
with a local tiny base model (no pretraining): the base goes straight to chat tuning, and
evaluation and the report hold only the two models the run made."""

from __future__ import annotations

import json

import pytest
import yaml

from workflow import QUICK, snakemake

pytestmark = pytest.mark.slow


def test_chat_only_run_reports_base_and_chat(tmp_path, tiny_llama_dir):
    skip = tmp_path / "chat-only.yaml"
    skip.write_text(yaml.safe_dump({"base_model": {"source": str(tiny_llama_dir)},
                                    "prune": {"enabled": False}, "heal": {"enabled": False}}))
    work = tmp_path / "work"
    snakemake(work, configfiles=(QUICK, skip))
    results = work / "results"
    assert sorted(p.name for p in (results / "eval").iterdir()) == ["base.json", "chat.json"]
    assert not (results / "models" / "pruned").exists() and not (results / "prune").exists()
    assert not (results / "models" / "healed").exists()
    summary = json.loads((results / "report" / "summary.json").read_text())
    assert [row["model"] for row in summary["models"]] == ["base", "chat"]
    assert summary["plan"] is None and list(summary["training"]) == ["chat"]
    report = results / "report"
    assert (report / "loss.png").exists() and not (report / "layer_scores.png").exists()
    table = (report / "summary.md").read_text(encoding="utf-8")
    assert "| chat |" in table and "pruned" not in table and "healed" not in table
