"""Workflow configuration: readable validation before any job runs, and which stages run.

`snakemake.utils.validate` fills the schema's defaults but reports a failure as a raw
jsonschema dump; users need the key, what is wrong and the fix, so this module turns each
schema error into one such line, then collects the checks a schema cannot express from
the stages that own them (`secateurs.<stage>.checks`: a plan that removes more layers
than the model has, input files that do not exist, ...). It checks nothing itself.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from secateurs import settings
from secateurs.base_model import checks as base_model_checks
from secateurs.data import checks as data_checks
from secateurs.evaluate import checks as evaluate_checks
from secateurs.prune import checks as prune_checks
from secateurs.train import checks as train_checks
from secateurs.train.hardware import gpu_only_problems


class ConfigError(ValueError):
    """The configuration cannot run; the message lists every problem found."""


def validate_config(config: dict, schema_path: str | Path, *, basedir: str | Path = ".") -> None:
    """Raise ConfigError naming every invalid key of `config`, with a fix for each."""
    schema = yaml.safe_load(Path(schema_path).read_text())
    validator = jsonschema.Draft202012Validator(schema)
    problems = [_describe(error, schema_path) for error in
                sorted(validator.iter_errors(config), key=lambda e: list(e.absolute_path))]
    if not problems:
        problems = check_semantics(settings.complete_config(config), Path(basedir))
    if problems:
        raise ConfigError("invalid configuration:\n" + "\n".join(f"  - {p}" for p in problems))


def coerce_overrides(config: dict) -> dict:
    """Read command-line values by their schema type, in place.

    Snakemake 9 hands nested `--config` values over as strings (`--config 'chat={learning_rate:
    1.0e-4}'` arrives as '1.0e-4'), which the schema would refuse as the wrong type. A string
    where the schema allows no string is parsed as YAML and kept when it then fits."""
    _coerce(config, settings.schema())
    return config


def _coerce(value: Any, node: dict) -> Any:
    node = settings.resolved(node)
    if isinstance(value, dict):
        props, extra = node.get("properties", {}), node.get("additionalProperties")
        for key in list(value):
            sub = props.get(key, extra if isinstance(extra, dict) else None)
            if sub is not None:
                value[key] = _coerce(value[key], sub)
        return value
    if isinstance(value, list) and isinstance(node.get("items"), dict):
        return [_coerce(item, node["items"]) for item in value]
    types = node.get("type", [])
    types = types if isinstance(types, list) else [types]
    if isinstance(value, str) and types and "string" not in types:
        parsed = yaml.safe_load(value)
        if jsonschema.Draft202012Validator({"type": types}).is_valid(parsed):
            return parsed
    return value


def _describe(error: jsonschema.ValidationError, schema_path: str | Path) -> str:
    key = ".".join(str(part) for part in error.absolute_path) or "(top level)"
    if error.validator == "required":
        missing = re.search(r"'([^']+)' is a required property", error.message)
        name = missing.group(1) if missing else "?"
        full = f"{key}.{name}" if key != "(top level)" else name
        return f"config key `{full}` is missing. Fix: add it (see {schema_path} for its meaning)."
    if error.validator in ("additionalProperties", "unevaluatedProperties"):
        return (f"config key `{key}`: {error.message}. Fix: check the spelling against "
                f"{schema_path}.")
    if error.validator == "type":
        expected = error.validator_value
        return (f"config key `{key}` = {error.instance!r} has the wrong type. "
                f"Fix: give a value of type {expected}.")
    if error.validator == "enum":
        return (f"config key `{key}` = {error.instance!r} is not allowed. "
                f"Fix: use one of {error.validator_value}.")
    return f"config key `{key}` = {_short(error.instance)}: {error.message}. Fix: see {schema_path}."


def _short(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) < 80 else text[:77] + "..."


def check_semantics(config: dict, basedir: Path) -> list[str]:
    """Checks across keys, run once the shapes are right; returns the problems found, in
    the order the stages' checks report them."""
    problems = data_checks.check_inputs(config, basedir)
    problems += base_model_checks.check_base_model(config, basedir)
    problems += prune_checks.check_plan(config, basedir)
    problems += prune_checks.check_strategy(config)
    problems += train_checks.check_training_gpus(config)
    problems += evaluate_checks.check_tasks(config, basedir)
    problems += train_checks.check_distillation(config)
    problems += data_checks.check_chat_sources(config, basedir)
    return problems


def check_machine(config: dict, *, local: bool) -> None:
    """Checks of the machine the jobs run on, made when a run starts (the Snakefile's
    `onstart`: before any job or download, skipped by dry runs, which run nothing):
    CUDA-only training settings (secateurs.train.hardware). `config` is the completed
    workflow config; `local` whether Snakemake runs the jobs here."""
    problems = gpu_only_problems(config, local=local)
    if problems:
        raise ConfigError("configuration cannot run here:\n" + "\n".join(f"  - {p}" for p in problems))


# ----------------------------------------------------------------------------- stages
#
# A recipe may skip pruning, healing or chat (`prune: {enabled: false}`, ...): chat tuning
# of an existing model (YaYi, AEZAKMI), healing of a model pruned elsewhere. The models a
# run makes, and which model each training stage starts from, follow from these flags
# alone; rules/common.smk asks these functions and nothing else.

STAGES = ("prune", "heal", "chat")
STAGE_MODEL = {"prune": "pruned", "heal": "healed", "chat": "chat"}


def stage_enabled(config: dict, stage: str) -> bool:
    return bool(config[stage]["enabled"])


def run_models(config: dict) -> list[str]:
    """The models this run makes and evaluates, in pipeline order: base first, always."""
    return ["base"] + [STAGE_MODEL[s] for s in STAGES if stage_enabled(config, s)]


def input_model(config: dict, stage: str) -> str:
    """The model a stage starts from: the last enabled stage's model before it, else base."""
    models = ["base"] + [STAGE_MODEL[s] for s in STAGES[:STAGES.index(stage)]
                         if stage_enabled(config, s)]
    return models[-1]
