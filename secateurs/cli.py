"""Command-line options built from the schema, so the command line, the workflow and the
library share one default, type, range and description per setting.

A stage's options are its config section's leaf settings (`--learning-rate`,
`--lora.r`); `--config FILE` reads the section from a workflow config (a recipe) first,
and options given on the command line win over it. Values are read as YAML (so `--bf16
false`, `--slices "[[0, 24], [55, 59]]"` and `--max-steps null` mean what they say), then
the section is validated against the schema and completed with its defaults.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from secateurs import settings


# settings whose own name would clash with an option every stage has (--config FILE)
RENAMED = {"config": "dataset_config"}


def add_section_options(parser: argparse.ArgumentParser, section: str) -> None:
    """One option per leaf setting of `section`, its help and choices from the schema."""
    group = parser.add_argument_group(f"settings (config section `{section}`)")
    group.add_argument("--config", dest="config_file", metavar="FILE",
                       help=f"a workflow config (a recipe) whose `{section}` section to start from")
    for field in settings.fields(section):
        flag = "--" + RENAMED.get(field.key, field.key).replace("_", "-")
        if flag in parser._option_string_actions:  # the stage's own input of that name wins
            continue
        text = field.description or ""
        text += f" (default: {yaml.safe_dump(field.default, default_flow_style=True).strip()}"
        text = text.removesuffix("\n...") + ")"
        kwargs: dict[str, Any] = {"dest": f"setting:{field.key}", "default": argparse.SUPPRESS,
                                  "metavar": _metavar(field), "help": text.replace("%", "%%")}
        if field.choices and all(isinstance(c, str) for c in field.choices):
            kwargs["choices"] = list(field.choices)
        else:
            kwargs["type"] = _reader(field)
        group.add_argument(flag, **kwargs)


def _metavar(field: settings.Field) -> str:
    if field.choices and all(isinstance(c, str) for c in field.choices):
        return "{" + ",".join(field.choices) + "}"
    return "|".join(field.types).upper() if field.types != ("any",) else "VALUE"


def _reader(field: settings.Field):
    if field.types == ("string",):
        return str

    def read(text: str) -> Any:
        return yaml.safe_load(text)

    read.__name__ = "/".join(field.types)
    return read


def section_settings(args: argparse.Namespace, section: str) -> dict:
    """The section's settings: the --config file's section, then the options given, then
    the schema's defaults; refused with the key and the fix when one is invalid."""
    given: dict = {}
    if getattr(args, "config_file", None):
        given = _section_of(_read_config(Path(args.config_file)), section)
    for dest, value in vars(args).items():
        if dest.startswith("setting:"):
            _set(given, dest.removeprefix("setting:").split("."), value)
    _validate(given, section)
    return settings.complete(section, given)


def _read_config(path: Path) -> dict:
    """A config file as the workflow reads it: JSON as JSON (YAML 1.1 would read `5e-06` as
    a string), then every value read by its schema type, as `--config` values are."""
    from secateurs.config import coerce_overrides

    text = path.read_text(encoding="utf-8")
    data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    return coerce_overrides(data or {})


def _section_of(config: dict, section: str) -> dict:
    for part in section.split("."):
        config = config.get(part) or {}
    return dict(config)


def _set(target: dict, keys: list[str], value: Any) -> None:
    for key in keys[:-1]:
        target = target.setdefault(key, {})
    target[keys[-1]] = value


def _validate(given: dict, section: str) -> None:
    # stage inputs are positional arguments here, so keys the workflow requires are not
    node = {k: v for k, v in settings.section(section).items()
            if k not in ("required", "if", "then", "else", "allOf", "anyOf", "oneOf")}
    node["$defs"] = settings.schema().get("$defs", {})
    error = jsonschema.exceptions.best_match(jsonschema.Draft202012Validator(node).iter_errors(given))
    if error is not None:
        key = ".".join(str(p) for p in error.absolute_path) or section
        raise ValueError(f"setting `{section}.{key}`: {error.message}. Fix: see "
                         f"`python -m secateurs <stage> --help` or {settings.SCHEMA_PATH}")
