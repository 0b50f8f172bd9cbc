"""One definition per setting: the schema. The workflow, the library and the command line
read their defaults from it; these tests prove nothing else holds one."""

from __future__ import annotations

import ast
import copy

import pytest
import yaml
from snakemake.utils import validate

from secateurs import settings
from workflow import REPO

TRAINING_SECTIONS = ["heal", "chat", "demo.pretrain"]


def _at(config: dict, dotted: str):
    for part in dotted.split("."):
        config = config[part]
    return config


@pytest.fixture()
def minimal_config() -> dict:
    """The demo config with every training section cut to its required keys."""
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    config["heal"] = {"token_budget": 1000}
    config["chat"] = {"data": config["chat"]["data"]}
    config["demo"]["pretrain"] = {"token_budget": 1000}
    return config


@pytest.mark.parametrize("section", TRAINING_SECTIONS + ["prune.score", "evaluate", "base_model"])
def test_workflow_and_library_fill_the_same_defaults(minimal_config, section):
    given = copy.deepcopy(_at(minimal_config, section))
    validate(minimal_config, str(settings.SCHEMA_PATH))  # what the Snakefile does
    assert _at(minimal_config, section) == settings.complete(section, given)


def test_stage_defaults_differ_only_where_the_schema_says():
    heal, chat = settings.defaults("heal"), settings.defaults("chat")
    assert heal["learning_rate"] == 1e-4 and chat["learning_rate"] == 2e-5
    assert heal["weight_decay"] == 0.1 and chat["weight_decay"] == 0.0
    assert heal["distill"]["temperature"] == 1.0
    assert heal["attn_implementation"] == chat["attn_implementation"] == "auto"
    # heal.recovery is healing's own: pretraining from random weights has nothing to recover
    assert settings.defaults("demo.pretrain") == {k: v for k, v in heal.items()
                                                  if k not in ("enabled", "recovery")}


def test_every_setting_has_a_description():
    assert settings.undocumented() == []


def _setting_names() -> set[str]:
    names = set()
    for top in settings.schema()["properties"]:
        try:
            names |= {f.key.split(".")[-1] for f in settings.fields(top)}
        except KeyError:
            pass
    return names


CONFIG_NAMES = {"config", "cfg", "settings", "training", "section", "plan", "lora", "distill"}


def test_no_code_side_defaults_for_settings():
    """`config.get("learning_rate", 1e-4)` would be a second default: the library reads
    settings filled from the schema, so a fallback there can only disagree with it."""
    names, found = _setting_names(), []
    for path in (REPO / "secateurs").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr == "get" and isinstance(node.func.value, ast.Name)
                    and node.func.value.id in CONFIG_NAMES and len(node.args) == 2
                    and isinstance(node.args[0], ast.Constant) and node.args[0].value in names
                    and not (isinstance(node.args[1], ast.Constant) and node.args[1].value is None)):
                found.append(f"{path.relative_to(REPO)}:{node.lineno} .get({node.args[0].value!r}, ...)")
        assert "DEFAULTS" not in path.read_text(), path
    assert found == []
