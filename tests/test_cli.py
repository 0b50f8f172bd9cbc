"""`python -m secateurs`: every stage the workflow runs, its options read from the schema."""

from __future__ import annotations

import subprocess
import sys

import pytest

from secateurs import settings
from secateurs.__main__ import STAGES, build_parser
from secateurs.cli import section_settings
from workflow import REPO

WORKFLOW_STAGES = {"extract", "convert", "text", "mix", "tokenize", "score", "plan", "slice",
                   "teacher-logits", "heal", "chat-data", "chat", "evaluate", "report"}


def test_help_lists_every_stage():
    out = subprocess.run([sys.executable, "-m", "secateurs", "--help"], capture_output=True,
                         text=True, cwd=REPO, check=True).stdout
    assert {s.name for s in STAGES} == WORKFLOW_STAGES
    for name in WORKFLOW_STAGES:
        assert f"    {name}" in out


@pytest.mark.parametrize("stage", [s for s in STAGES if s.section], ids=lambda s: s.name)
def test_options_default_to_the_schema(stage):
    """With no option given a stage runs with the schema's defaults: the same settings a
    workflow run without that section would use."""
    parser = build_parser()
    required = {"heal": ["--model", "m", "--packed", "p", "--out", "o", "--checkpoint-dir", "c",
                         "--log-csv", "l"],
                "chat": ["--model", "m", "--data", "d", "--out", "o", "--checkpoint-dir", "c",
                         "--log-csv", "l"],
                "mix": ["--text", "a=x.parquet:en:1"],
                "teacher-logits": ["--work-dir", "w"]}.get(stage.name, [])
    paths = ["x"] * len(stage.paths)
    args = parser.parse_args([stage.name, *paths, *required])
    assert section_settings(args, stage.section) == settings.complete(stage.section, {})


def test_options_and_a_config_file_layer_over_the_defaults(tmp_path):
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("heal:\n  learning_rate: 2.0e-4\n  token_budget: 1000\n  lora: {r: 4}\n")
    args = build_parser().parse_args(
        ["heal", "--model", "m", "--packed", "p", "--out", "o", "--checkpoint-dir", "c",
         "--log-csv", "l", "--config", str(recipe), "--lora.r", "8", "--bf16", "false",
         "--method", "lora"])
    got = section_settings(args, "heal")
    assert got == settings.complete("heal", {"learning_rate": 2e-4, "token_budget": 1000,
                                             "lora": {"r": 8}, "bf16": False, "method": "lora"})


def test_a_bad_value_names_the_setting_and_the_fix():
    args = build_parser().parse_args(["plan", "s", "m", "o", "y", "--n-remove", "0"])
    with pytest.raises(ValueError, match=r"setting `prune.plan.n_remove`.*Fix"):
        section_settings(args, "prune.plan")
    with pytest.raises(SystemExit):  # a choice outside the schema's enum
        build_parser().parse_args(["plan", "s", "m", "o", "y", "--strategy", "random"])
