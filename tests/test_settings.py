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


# The public stage functions and the config sections whose settings they take as keyword
# arguments (the rule passes the section spread; `base_model` gives the access flags).
STAGE_FUNCTIONS = [
    ("secateurs.data.wiki", "extract_dump", ["data.sources.*"]),
    ("secateurs.data.convert", "convert_articles", ["data.sources.*"]),
    ("secateurs.data.text", "sample_text", ["data.sources.*"]),
    ("secateurs.data.mix", "mix_corpora", ["data.mix"]),
    ("secateurs.data.packing", "tokenize_and_pack", ["data.tokenize"]),
    ("secateurs.data.chat", "prepare_chat_data", ["chat"]),
    ("secateurs.prune.scoring", "score_layers", ["prune.score", "base_model"]),
    ("secateurs.prune.plan", "plan_pruning", ["prune.plan", "base_model"]),
    ("secateurs.prune.slicing", "slice_model", ["prune.slice", "base_model"]),
    ("secateurs.evaluate.heldout", "evaluate_model", ["evaluate", "base_model"]),
    ("secateurs.evaluate.heldout", "perplexity", ["evaluate"]),
    ("secateurs.evaluate.heldout", "load_model", ["evaluate", "base_model"]),
    ("secateurs.evaluate.lmeval", "run_tasks", ["evaluate"]),
    ("secateurs.prune.scoring", "load_model", ["prune.score", "base_model"]),
    ("secateurs.demo.tokenizer", "train_tokenizer", ["demo.tokenizer"]),
    ("secateurs.demo.tokenizer", "train_tokenizer_on_parquet", ["demo.tokenizer"]),
]
# Parameters named like a setting that are not that setting, each with its reason.
NOT_THE_SETTING = {
    # a length filter on the prepared data, off unless asked; chat.max_length is the
    # trainer's sequence length, which chat_sft reads
    ("prepare_chat_data", "max_length"),
    # None is the strict reading (nothing trimmed); the workflow always passes the section
    ("prepare_chat_data", "cleaning"),
}


@pytest.mark.parametrize("module,name,sections", STAGE_FUNCTIONS,
                         ids=[f"{m.rsplit('.', 1)[-1]}.{n}" for m, n, _ in STAGE_FUNCTIONS])
def test_signature_defaults_are_the_schemas(module, name, sections):
    """A stage function's default for a setting is the schema's, or it has none (the
    caller fills it from the settings): a second, different default would make a library
    call run with other settings than the workflow and the command line."""
    import importlib
    import inspect

    function = getattr(importlib.import_module(module), name)
    disagree = []
    for parameter in inspect.signature(function).parameters.values():
        if parameter.default is inspect.Parameter.empty or (name, parameter.name) in NOT_THE_SETTING:
            continue
        for section in sections:
            spec = settings.section(section).get("properties", {}).get(parameter.name)
            if spec is None:
                continue
            spec = settings.resolved(spec)
            if "default" not in spec:
                continue
            default = parameter.default
            default = list(default) if isinstance(default, tuple) else default
            if default is None and spec.get("type") == "object":
                continue  # the function completes the section from the schema itself
            if default != spec["default"]:
                disagree.append(f"{name}({parameter.name}={parameter.default!r}): schema "
                                f"{section}.{parameter.name} = {spec['default']!r}")
    assert disagree == []


def test_enum_reads_the_schema():
    assert settings.enum("training", "lr_scheduler") == (
        "cosine", "linear", "constant", "constant_with_warmup")
    assert settings.enum("heal", "method") == ("full", "lora", "qlora")
    assert settings.enum("prune.plan", "strategy")[0] == "bi"
    with pytest.raises(KeyError):
        settings.enum("heal", "learning_rate")


def test_plan_strategies_are_the_schemas():
    from secateurs.prune.plan import STRATEGIES

    assert STRATEGIES == settings.enum("prune.plan", "strategy")
