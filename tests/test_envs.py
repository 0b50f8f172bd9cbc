"""Conda environments pin the same versions as pyproject.toml (conda itself is not here)."""

from __future__ import annotations

import re
import tomllib

import pytest
import yaml

from workflow import REPO

ENV_FILES = sorted((REPO / "envs").glob("*.yaml"))


def pins(requirements) -> dict[str, str | None]:
    found = {}
    for requirement in requirements:
        match = re.fullmatch(r"([A-Za-z0-9_.\-]+)\s*(?:==\s*([\w.+]+))?", requirement.strip())
        assert match, f"unparseable requirement {requirement!r}"
        found[match.group(1).lower()] = match.group(2)
    return found


def project_pins() -> dict[str, str | None]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    extras = [r for group in project["optional-dependencies"].values() for r in group]
    return pins(project["dependencies"] + extras)


def test_every_rule_env_exists():
    for smk in (REPO / "rules").glob("*.smk"):
        for env in re.findall(r'"\.\./envs/([\w.-]+)"', smk.read_text()):
            assert (REPO / "envs" / env).exists(), f"{smk.name} names envs/{env}, which is missing"


@pytest.mark.parametrize("env_file", ENV_FILES, ids=lambda p: p.name)
def test_env_pins_agree_with_pyproject(env_file):
    env = yaml.safe_load(env_file.read_text())
    assert "python=3.11" in env["dependencies"]
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    expected = project_pins()
    for name, version in pins(pip).items():
        assert name in expected, f"{env_file.name}: {name} is not a dependency in pyproject.toml"
        assert version == expected[name], (
            f"{env_file.name}: {name}=={version} but pyproject.toml pins {expected[name]}")
