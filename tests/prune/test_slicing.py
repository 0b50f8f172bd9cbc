"""slice_model: the sliced checkpoint equals the same layers deleted in memory."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml
from safetensors import safe_open
from transformers import AutoModelForCausalLM, AutoTokenizer

from secateurs.prune.layers import ModelDirError
from secateurs.prune.shards import parse_size, read_safetensors_header
from secateurs.prune.slicing import slice_model


def delete_in_memory(model, container: str, keep: list[int]):
    """The reference, written independently of secateurs: rebuild the ModuleList, fix the
    layer count, per-layer config lists and every module's layer_idx."""
    parent_path, _, attr = container.rpartition(".")
    parent = model.get_submodule(parent_path)
    old = getattr(parent, attr)
    setattr(parent, attr, torch.nn.ModuleList([old[i] for i in keep]))
    for new_index, layer in enumerate(getattr(parent, attr)):
        for module in layer.modules():
            if hasattr(module, "layer_idx"):
                module.layer_idx = new_index
    config = model.config
    if getattr(config, "layer_types", None) is not None:
        config.layer_types = [config.layer_types[i] for i in keep]
    config.num_hidden_layers = len(keep)
    return model


def batch(vocab_size: int) -> dict:
    torch.manual_seed(1)
    ids = torch.randint(3, vocab_size, (2, 12))
    mask = torch.ones_like(ids)
    mask[1, 8:] = 0  # a padded row: the mask must reach every kept layer
    return {"input_ids": ids, "attention_mask": mask}


def assert_same_logits(source: Path, sliced: Path, container: str, keep: list[int]):
    reference = AutoModelForCausalLM.from_pretrained(source, dtype=torch.float32).eval()
    delete_in_memory(reference, container, keep)
    model = AutoModelForCausalLM.from_pretrained(sliced, dtype=torch.float32).eval()
    assert model.config.num_hidden_layers == len(keep)
    inputs = batch(model.config.vocab_size)
    with torch.no_grad():
        expected = reference(**inputs, use_cache=False).logits
        got = model(**inputs, use_cache=False).logits
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-6)
    return model


def test_sliced_llama_gives_the_logits_of_in_memory_deletion(tiny_llama_dir, tmp_path):
    keep = [0, 2, 3, 5]
    out = tmp_path / "sliced"
    record = slice_model(tiny_llama_dir, keep, out)
    assert record["num_layers_after"] == 4 and record["remove"] == [1, 4]
    assert_same_logits(tiny_llama_dir, out, "model.layers", keep)


def test_tensors_are_renumbered_bit_identical(tiny_llama_dir, tmp_path):
    out = tmp_path / "sliced"
    slice_model(tiny_llama_dir, [1, 4], out)
    with safe_open(tiny_llama_dir / "model.safetensors", "pt") as src:
        originals = {name: src.get_tensor(name) for name in src.keys()}
    index = json.loads((out / "model.safetensors.index.json").read_text())
    names = set(index["weight_map"])
    assert "model.layers.1.mlp.down_proj.weight" in names
    assert not any(name.startswith("model.layers.2.") for name in names)
    for shard in set(index["weight_map"].values()):
        with safe_open(out / shard, "pt") as f:
            for name in f.keys():
                old = name.replace("model.layers.1.", "model.layers.4.").replace(
                    "model.layers.0.", "model.layers.1.")
                assert torch.equal(f.get_tensor(name), originals[old]), name


def test_shards_respect_max_shard_size_and_index_is_complete(tiny_llama_dir, tmp_path):
    out = tmp_path / "sliced"
    record = slice_model(tiny_llama_dir, [0, 1, 2], out, max_shard_size="100KB")
    shards = sorted(out.glob("model-*.safetensors"))
    assert record["shards"] == len(shards) > 1
    largest = 512 * 64 * 4  # embedding / lm_head: a single tensor bigger than a shard
    for shard in shards:
        header, start = read_safetensors_header(shard)
        data = shard.stat().st_size - start
        assert data <= max(100_000, largest)
        assert start % 8 == 0
    index = json.loads((out / "model.safetensors.index.json").read_text())
    assert index["metadata"]["total_size"] == record["total_size"]
    assert set(index["weight_map"].values()) == {s.name for s in shards}
    assert_same_logits(tiny_llama_dir, out, "model.layers", [0, 1, 2])


def test_side_files_record_and_mergekit_yaml(tiny_llama_dir, tmp_path):
    out = tmp_path / "sliced"
    plan = {"strategy": "manual", "keep": [0, 1, 4, 5]}
    slice_model(tiny_llama_dir, [0, 1, 4, 5], out, plan=plan)
    for name in ("tokenizer.json", "tokenizer_config.json", "generation_config.json"):
        assert (out / name).read_bytes() == (tiny_llama_dir / name).read_bytes()
    tokenizer = AutoTokenizer.from_pretrained(out)
    assert "<|im_start|>" in tokenizer.apply_chat_template(
        [{"role": "user", "content": "hi"}], tokenize=False)
    record = json.loads((out / "secateurs_slice.json").read_text())
    assert record["plan"] == plan
    assert record["source_model"] == str(Path(tiny_llama_dir).resolve())
    assert record["remove"] == [2, 3]
    recipe = yaml.safe_load((out / "mergekit_config.yml").read_text())
    assert recipe["merge_method"] == "passthrough"
    assert [s["sources"][0]["layer_range"] for s in recipe["slices"]] == [[0, 2], [4, 6]]


def test_tied_embeddings_stay_tied(tiny_tokenizer_dir, tmp_path):
    from secateurs.demo.model import init_llama

    source = tmp_path / "tied"
    init_llama(tiny_tokenizer_dir, source, hidden_size=32, num_hidden_layers=4,
               num_attention_heads=2, intermediate_size=64, tie_word_embeddings=True)
    out = tmp_path / "sliced"
    slice_model(source, [0, 3], out)
    model = assert_same_logits(source, out, "model.layers", [0, 3])
    assert model.config.tie_word_embeddings
    assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()


def test_refuses_pickles_and_remote_code(tiny_llama_dir, tmp_path):
    pickled = tmp_path / "pickled"
    pickled.mkdir()
    (pickled / "config.json").write_text((tiny_llama_dir / "config.json").read_text())
    (pickled / "pytorch_model.bin").write_bytes(b"not really a pickle")
    with pytest.raises(ModelDirError, match="allow_pickle"):
        slice_model(pickled, [0], tmp_path / "out")
    remote = tmp_path / "remote"
    remote.mkdir()
    config = json.loads((tiny_llama_dir / "config.json").read_text())
    (remote / "config.json").write_text(json.dumps({**config, "auto_map": {"AutoModel": "x.Y"}}))
    (remote / "model.safetensors").write_bytes((tiny_llama_dir / "model.safetensors").read_bytes())
    with pytest.raises(ModelDirError, match="trust_remote_code"):
        slice_model(remote, [0], tmp_path / "out")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("keep, message", [([], "empty"), ([2, 1], "increasing"),
                                           ([0, 6], "outside"), ([1, 1], "increasing")])
def test_bad_keep_lists_are_refused(tiny_llama_dir, tmp_path, keep, message):
    with pytest.raises(ValueError, match=message):
        slice_model(tiny_llama_dir, keep, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_parse_size():
    assert parse_size("2GB") == 2_000_000_000
    assert parse_size("1GiB") == 1 << 30
    assert parse_size("500MB") == 500_000_000
    assert parse_size(1234) == 1234
    with pytest.raises(ValueError, match="max_shard_size"):
        parse_size("big")


# --------------------------------------------------------------------------- architectures

SMALL = dict(vocab_size=128, hidden_size=32, num_attention_heads=4, num_hidden_layers=6)


def _configs():
    from transformers import (FalconConfig, Gemma2Config, GPTNeoXConfig, LlamaConfig,
                              MistralConfig, Qwen2Config, Qwen3Config)

    return {
        "llama": (LlamaConfig(intermediate_size=64, num_key_value_heads=2, **SMALL),
                  "model.layers"),
        "mistral": (MistralConfig(intermediate_size=64, num_key_value_heads=2,
                                  sliding_window=5, **SMALL), "model.layers"),
        "qwen2": (Qwen2Config(intermediate_size=64, num_key_value_heads=2,
                              use_sliding_window=True, sliding_window=4, max_window_layers=3,
                              **SMALL), "model.layers"),
        "qwen3": (Qwen3Config(intermediate_size=64, num_key_value_heads=2, head_dim=8,
                              tie_word_embeddings=True, **SMALL), "model.layers"),
        "falcon": (FalconConfig(new_decoder_architecture=True, num_kv_heads=2, **SMALL),
                   "transformer.h"),
        "falcon-mqa": (FalconConfig(multi_query=True, parallel_attn=True, **SMALL),
                       "transformer.h"),
        "gpt_neox": (GPTNeoXConfig(intermediate_size=64, **SMALL), "gpt_neox.layers"),
        "gemma2": (Gemma2Config(intermediate_size=64, num_key_value_heads=2, head_dim=8,
                                sliding_window=4, **SMALL), "model.layers"),
    }


def save_random(config, out: Path, drop_config_keys=()) -> Path:
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config)
    with torch.no_grad():  # random norms too, so a misplaced norm shows in the logits
        for name, param in model.named_parameters():
            if "norm" in name or "ln" in name:
                param.add_(torch.randn_like(param) * 0.1)
    model.save_pretrained(out)
    if drop_config_keys:
        raw = json.loads((out / "config.json").read_text())
        (out / "config.json").write_text(json.dumps(
            {k: v for k, v in raw.items() if k not in drop_config_keys}))
    return out


@pytest.mark.parametrize("arch", ["llama", "mistral", "qwen2", "qwen3", "falcon",
                                  "falcon-mqa", "gpt_neox", "gemma2"])
def test_architectures_slice_to_in_memory_deletion(arch, tmp_path):
    config, container = _configs()[arch]
    source = save_random(config, tmp_path / arch)
    keep = [0, 1, 3, 5]
    slice_model(source, keep, tmp_path / "sliced", max_shard_size="50KB")
    model = assert_same_logits(source, tmp_path / "sliced", container, keep)
    if getattr(config, "layer_types", None):
        assert model.config.layer_types == [config.layer_types[i] for i in keep]


@pytest.mark.parametrize("arch", ["gemma2", "qwen2"])
def test_derived_layer_types_are_written_out(arch, tmp_path, caplog):
    """Older hub configs omit layer_types and transformers derives it from the index;
    re-deriving it after slicing would change kept layers' attention type."""
    config, container = _configs()[arch]
    source = save_random(config, tmp_path / arch, drop_config_keys=("layer_types",))
    keep = [0, 2, 3, 4] if arch == "gemma2" else [0, 1, 2, 4]
    with caplog.at_level("WARNING", logger="secateurs.prune.layers"):
        slice_model(source, keep, tmp_path / "sliced")
    written = json.loads((tmp_path / "sliced" / "config.json").read_text())
    assert written["layer_types"] == [config.layer_types[i] for i in keep]
    assert ("layer pattern shifts" in caplog.text) == (arch == "gemma2")
    if arch == "qwen2":
        assert written["max_window_layers"] == 3
    assert_same_logits(source, tmp_path / "sliced", container, keep)


def test_falcon_n_layer_alias_is_updated(tmp_path):
    config, container = _configs()["falcon"]
    source = save_random(config, tmp_path / "falcon")
    raw = json.loads((source / "config.json").read_text())
    raw["n_layer"] = raw.pop("num_hidden_layers")  # as Falcon's original hub configs
    (source / "config.json").write_text(json.dumps(raw))
    slice_model(source, [0, 5], tmp_path / "sliced")
    written = json.loads((tmp_path / "sliced" / "config.json").read_text())
    assert written["n_layer"] == 2 and "num_hidden_layers" not in written


def test_keep_from_plan_file_or_string(tiny_llama_dir, tmp_path):
    plan_path = tmp_path / "plan.json"
    plan_path.write_text(json.dumps({"strategy": "bi", "keep": [0, 2, 4]}))
    record = slice_model(tiny_llama_dir, None, tmp_path / "a", plan=str(plan_path))
    assert record["keep"] == [0, 2, 4]
    saved = json.loads((tmp_path / "a" / "secateurs_slice.json").read_text())
    assert saved["plan"]["strategy"] == "bi"
    assert slice_model(tiny_llama_dir, "1,3", tmp_path / "b")["keep"] == [1, 3]
    with pytest.raises(ValueError, match="differ from the plan"):
        slice_model(tiny_llama_dir, [0, 1], tmp_path / "c", plan=plan_path)


@pytest.mark.slow
def test_mergekit_recipe_builds_the_same_tensors(tiny_llama_dir, tmp_path):
    """The YAML written beside the model, run through mergekit (when installed), gives
    exactly the tensors slice_model wrote."""
    import shutil
    import subprocess
    import sys

    exe = Path(sys.executable).with_name("mergekit-yaml")
    if not exe.exists() and shutil.which("mergekit-yaml") is None:
        pytest.skip("mergekit is not installed")
    out = tmp_path / "sliced"
    slice_model(tiny_llama_dir, [0, 1, 4, 5], out)
    merged = tmp_path / "merged"
    command = str(exe) if exe.exists() else "mergekit-yaml"
    subprocess.run([command, str(out / "mergekit_config.yml"), str(merged), "--quiet"],
                   check=True, capture_output=True)

    def tensors(directory):
        found = {}
        for path in directory.glob("*.safetensors"):
            with safe_open(path, "pt") as f:
                found.update({name: f.get_tensor(name) for name in f.keys()})
        return found

    ours, theirs = tensors(out), tensors(merged)
    assert set(ours) == set(theirs)
    assert all(torch.equal(ours[name], theirs[name]) for name in ours)
    assert json.loads((merged / "config.json").read_text())["num_hidden_layers"] == 4
