"""CUDA-only training settings are refused when a run starts, before any job or download,
naming the keys and the fix (secateurs.train.hardware, issue 21)."""

from __future__ import annotations

import pytest
import torch
import yaml

from secateurs.config import ConfigError, check_machine
from secateurs.settings import complete_config
from secateurs.train.hardware import gpu_only_problems
from workflow import REPO

RECIPES = sorted((REPO / "config" / "recipes").glob("*.yaml"))
# the recipes with settings only CUDA runs, and those settings
NEEDS_GPU = {"aezakmi-qlora": ["`chat.method: qlora`", "`chat.optimizer: adamw_bnb_8bit`",
                               "`chat.attn_implementation: flash_attention_2`"]}


def recipe(path) -> dict:
    return complete_config(yaml.safe_load(path.read_text(encoding="utf-8")))


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: p.stem)
def test_each_recipe_needing_cuda_is_refused_on_a_machine_without_it(path):
    """Locally, whatever resources.<rule>.gpu says (AEZAKMI asks chat_sft for one GPU)."""
    problems = gpu_only_problems(recipe(path), local=True, cuda=False)
    keys = NEEDS_GPU.get(path.stem)
    if keys is None:
        assert problems == []
        return
    assert len(problems) == 1
    assert all(key in problems[0] for key in keys), problems[0]
    assert "has none" in problems[0] and "Fix: run on a CUDA machine" in problems[0]
    assert "chat.method: lora, chat.optimizer: adamw_torch" in problems[0]


def test_a_cuda_machine_without_the_packages_is_refused_naming_them():
    config = recipe(REPO / "config" / "recipes" / "aezakmi-qlora.yaml")
    problems = gpu_only_problems(config, local=True, cuda=True, installed=lambda name: False)
    assert len(problems) == 1 and "Fix: pip install bitsandbytes flash-attn" in problems[0]
    only_flash = gpu_only_problems(config, local=True, cuda=True,
                                   installed=lambda name: name == "bitsandbytes")
    assert "need flash-attn" in only_flash[0] and "bitsandbytes" not in only_flash[0].split("need")[-1]
    assert gpu_only_problems(config, local=True, cuda=True, installed=lambda name: True) == []


def test_on_a_cluster_the_rule_must_ask_for_a_gpu():
    """The nodes cannot be seen from the submitting machine: its lack of CUDA says nothing,
    a GPU-only stage without GPUs in its resources would land on a CPU node."""
    config = recipe(REPO / "config" / "recipes" / "aezakmi-qlora.yaml")
    assert gpu_only_problems(config, local=False, cuda=False) == []
    config["resources"]["chat_sft"].pop("gpu")
    problems = gpu_only_problems(config, local=False, cuda=False)
    assert len(problems) == 1 and "Fix: set resources.chat_sft.gpu: 1" in problems[0]
    config["resources"]["chat_sft"]["gres"] = "gpu:a100:1"
    assert gpu_only_problems(config, local=False, cuda=False) == []


def test_a_skipped_stage_is_not_checked():
    config = recipe(REPO / "config" / "recipes" / "aezakmi-qlora.yaml")
    config["chat"]["enabled"] = False
    assert gpu_only_problems(config, local=True, cuda=False) == []


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without CUDA")
def test_this_machine_refuses_the_aezakmi_recipe():
    """The probe itself, as the Snakefile's onstart calls it."""
    with pytest.raises(ConfigError, match=r"chat\.method: qlora.*has none"):
        check_machine(recipe(REPO / "config" / "recipes" / "aezakmi-qlora.yaml"), local=True)
    check_machine(recipe(REPO / "config" / "recipes" / "yayi-sft.yaml"), local=True)
