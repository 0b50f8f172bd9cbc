"""layers: decoder-layer containers, layer-count aliases, per-layer config fields."""

from __future__ import annotations

import logging

import pytest
import torch
from transformers import (AutoModelForCausalLM, FalconConfig, GPTNeoXConfig, LlamaConfig)

from secateurs.prune.layers import (ModelDirError, check_model_dir, detect_layer_prefix,
                              find_decoder_layers, num_layers, slice_config_dict,
                              split_layer_name, warn_pattern_shift)

TINY = dict(vocab_size=64, hidden_size=16, num_attention_heads=2, num_hidden_layers=3)


@pytest.mark.parametrize("config, path", [
    (LlamaConfig(intermediate_size=32, **TINY), "model.layers"),
    (FalconConfig(**TINY), "transformer.h"),
    (GPTNeoXConfig(intermediate_size=32, **TINY), "gpt_neox.layers"),
])
def test_find_decoder_layers(config, path):
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    found, layers = find_decoder_layers(model)
    assert found == path and len(layers) == 3


def test_unknown_container_falls_back_to_the_layer_list():
    class Custom(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.config = LlamaConfig(num_hidden_layers=4)
            self.stack = torch.nn.ModuleDict({"blocks": torch.nn.ModuleList(
                [torch.nn.Linear(2, 2) for _ in range(4)])})
            self.heads = torch.nn.ModuleList([torch.nn.Linear(2, 2)])

    path, layers = find_decoder_layers(Custom())
    assert path == "stack.blocks" and len(layers) == 4


@pytest.mark.parametrize("config, expected", [
    ({"num_hidden_layers": 32}, 32), ({"n_layer": 60}, 60), ({"num_layers": 24}, 24),
    ({"text_config": {"num_hidden_layers": 26}}, 26),
])
def test_num_layers_aliases(config, expected):
    assert num_layers(config) == expected


def test_num_layers_missing_names_the_fix():
    with pytest.raises(ModelDirError, match="num_hidden_layers"):
        num_layers({"hidden_size": 8}, "x/config.json")


def test_slice_config_dict_updates_every_per_layer_field():
    config = {"num_hidden_layers": 4, "n_layer": 4, "eos_token_id": [1, 2, 3, 4],
              "layer_types": ["full", "sliding", "full", "sliding"],
              "max_window_layers": 2, "mlp_only_layers": [0, 3],
              "intermediate_size": [10, 11, 12, 13], "hidden_size": 8}
    new = slice_config_dict(config, [0, 2, 3], warn=False)
    assert new["num_hidden_layers"] == new["n_layer"] == 3
    assert new["layer_types"] == ["full", "full", "sliding"]
    assert new["intermediate_size"] == [10, 12, 13]
    assert new["max_window_layers"] == 1  # kept layers with old index < 2: only layer 0
    assert new["mlp_only_layers"] == [0, 2]
    assert new["eos_token_id"] == [1, 2, 3, 4] and new["hidden_size"] == 8
    assert config["num_hidden_layers"] == 4  # input untouched


def test_pattern_shift_is_warned(caplog):
    types = ["sliding_attention", "full_attention"] * 3
    with caplog.at_level(logging.WARNING, logger="secateurs.prune.layers"):
        assert warn_pattern_shift({"layer_types": types}, [0, 1, 2, 3], 6) is False
        assert not caplog.records
        assert warn_pattern_shift({"layer_types": types}, [0, 2, 3, 4, 5], 6) is True
    assert "layer pattern shifts" in caplog.text


def test_tensor_name_prefix():
    names = ["model.embed_tokens.weight", "lm_head.weight", "model.norm.weight"] + [
        f"model.layers.{i}.mlp.up_proj.weight" for i in range(3)] + [
        "model.vision.layers.0.w"]
    assert detect_layer_prefix(names, 3) == "model.layers"
    assert split_layer_name("model.layers.12.self_attn.q_proj.weight", "model.layers") == (
        12, "self_attn.q_proj.weight")
    assert split_layer_name("model.norm.weight", "model.layers") is None
    assert detect_layer_prefix([f"transformer.h.{i}.x" for i in range(2)], 2) == "transformer.h"
    with pytest.raises(ModelDirError, match="decoder layers"):
        detect_layer_prefix(names, 5)


def test_check_model_dir(tmp_path):
    (tmp_path / "config.json").write_text('{"num_hidden_layers": 2}')
    with pytest.raises(ModelDirError, match="no \\*.safetensors"):
        check_model_dir(tmp_path)
    (tmp_path / "model.bin").write_bytes(b"x")
    check_model_dir(tmp_path, allow_pickle=True)
    with pytest.raises(ModelDirError, match="allow_pickle"):
        check_model_dir(tmp_path)
