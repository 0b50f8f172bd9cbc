"""score_layers: hooked metrics equal a direct computation, padding changes nothing."""

from __future__ import annotations

import json
import math

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from conftest import SAMPLE_TEXTS
from secateurs.io import write_parquet
from secateurs.prune.scoring import calibration_batches, score_layers, score_model

TEXTS = [t * (i % 3 + 1) for i, t in enumerate(SAMPLE_TEXTS)]


@pytest.fixture(scope="module")
def llama(tiny_llama_dir):
    model = AutoModelForCausalLM.from_pretrained(tiny_llama_dir, dtype=torch.float32).eval()
    tokenizer = AutoTokenizer.from_pretrained(tiny_llama_dir)
    return model, tokenizer


def reference_states(model, tokenizer, text: str) -> list[torch.Tensor]:
    """Inputs of layers 0..L-1 and the last layer's output, one unpadded sample at a time.

    output_hidden_states[-1] is after the final norm, so the norm is bypassed to get the
    true output of the last layer (the pitfall the hooks avoid).
    """
    ids = tokenizer(text, max_length=64, truncation=True, return_tensors="pt")["input_ids"]
    norm = model.model.norm
    model.model.norm = torch.nn.Identity()
    try:
        with torch.no_grad():
            states = model(input_ids=ids, output_hidden_states=True, use_cache=False).hidden_states
    finally:
        model.model.norm = norm
    return [s[0].double() for s in states]


def reference_metrics(model, tokenizer, texts, n_layers):
    cos_sums, tokens = [0.0] * n_layers, 0
    last = {n: [0.0] * (n_layers - n + 1) for n in range(1, n_layers)}
    every = {n: [0.0] * (n_layers - n + 1) for n in range(1, n_layers)}
    for text in texts:
        states = reference_states(model, tokenizer, text)
        tokens += states[0].shape[0]
        for n in range(1, n_layers):
            for start in range(n_layers - n + 1):
                cos = torch.nn.functional.cosine_similarity(states[start], states[start + n],
                                                            dim=-1).clamp(-1, 1)
                dist = torch.arccos(cos) / math.pi
                last[n][start] += float(dist[-1]) / len(texts)
                every[n][start] += float(dist.sum())
                if n == 1:
                    cos_sums[start] += float(cos.sum())
    every = {n: [v / tokens for v in row] for n, row in every.items()}
    return [1 - c / tokens for c in cos_sums], last, every


def test_hooked_metrics_equal_direct_computation_with_padding(llama):
    model, tokenizer = llama
    batches = calibration_batches(tokenizer, TEXTS, 64, batch_size=4)
    assert (batches[0]["attention_mask"] == 0).any(), "the test needs padded rows"
    result = score_model(model, batches, progress=False)
    bi, last, every = reference_metrics(model, tokenizer, TEXTS, 6)
    assert result["samples"] == len(TEXTS)
    assert result["block_influence"] == pytest.approx(bi, abs=1e-5)
    for n in range(1, 6):
        assert result["angular_distance"]["last_token"][str(n)] == pytest.approx(last[n], abs=1e-5)
        assert result["angular_distance"]["all_tokens"][str(n)] == pytest.approx(every[n], abs=1e-5)


def test_batch_size_does_not_change_scores(llama):
    model, tokenizer = llama
    one = score_model(model, calibration_batches(tokenizer, TEXTS, 64, 1), progress=False)
    many = score_model(model, calibration_batches(tokenizer, TEXTS, 64, 6), progress=False)
    assert one["block_influence"] == pytest.approx(many["block_influence"], abs=1e-6)
    assert one["angular_distance"]["last_token"]["3"] == pytest.approx(
        many["angular_distance"]["last_token"]["3"], abs=1e-6)


def test_identity_layer_scores_zero_without_nan(tiny_llama_dir):
    """A layer whose residual branches are zero returns its input: cos rounds to >= 1, and
    an unclamped arccos would give NaN."""
    model = AutoModelForCausalLM.from_pretrained(tiny_llama_dir, dtype=torch.float32).eval()
    tokenizer = AutoTokenizer.from_pretrained(tiny_llama_dir)
    layer = model.model.layers[3]
    with torch.no_grad():
        layer.self_attn.o_proj.weight.zero_()
        layer.mlp.down_proj.weight.zero_()
    result = score_model(model, calibration_batches(tokenizer, TEXTS, 64, 3), max_block=2,
                         progress=False)
    bi = result["block_influence"]
    assert not any(math.isnan(v) for v in bi)
    assert abs(bi[3]) < 1e-6 and min(range(6), key=bi.__getitem__) == 3
    assert result["angular_distance"]["all_tokens"]["1"][3] < 1e-3
    assert set(result["angular_distance"]["last_token"]) == {"1", "2"}


def test_score_layers_writes_json_csv_png(tiny_llama_dir, tmp_path):
    calibration = tmp_path / "mix.parquet"
    write_parquet([{"text": t} for t in TEXTS + [""]], calibration)
    out = tmp_path / "scores"
    scores = score_layers(tiny_llama_dir, calibration, out / "s.json", out / "s.csv",
                          out / "s.png", num_samples=4, seq_len=24, batch_size=2,
                          max_block=3, device="cpu", progress=False, ppl_block_sizes="2")
    saved = json.loads((out / "s.json").read_text())
    assert len(saved["perplexity"]["without_layer"]) == 6
    assert len(saved["perplexity"]["without_block"]["2"]) == 5
    assert saved["settings"]["ppl_block_sizes"] == [2]
    assert saved["num_layers"] == 6 and saved["samples"] == 4
    assert saved["settings"]["max_block"] == 3 and saved["settings"]["seq_len"] == 24
    assert saved["block_influence"] == pytest.approx(scores["block_influence"])
    assert saved["best_block"]["2"] == min(range(5), key=saved["angular_distance"]
                                           ["last_token"]["2"].__getitem__)
    lines = (out / "s.csv").read_text().splitlines()
    assert lines[0].startswith("#") and "exclusive" in "".join(lines[:6])
    header = [l for l in lines if not l.startswith("#")][0]
    rows = [l.split(",") for l in lines if l[0].isdigit()]
    assert header == "block_start,block_end,n,distance,distance_all_tokens,calibration"
    assert {r[5] for r in rows} == {"all"}  # no `lang` column: one calibration set
    assert len(rows) == 6 + 5 + 4  # n = 1, 2, 3 over 6 layers
    assert all(int(r[1]) - int(r[0]) == int(r[2]) for r in rows)
    assert (out / "s.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_quantized_checkpoint_is_refused(tiny_llama_dir, tmp_path):
    model_dir = tmp_path / "quantized"
    model_dir.mkdir()
    for path in tiny_llama_dir.iterdir():
        (model_dir / path.name).write_bytes(path.read_bytes())
    config = json.loads((model_dir / "config.json").read_text())
    config["quantization_config"] = {"quant_method": "bitsandbytes", "load_in_4bit": True}
    (model_dir / "config.json").write_text(json.dumps(config))
    calibration = tmp_path / "mix.parquet"
    write_parquet([{"text": t} for t in TEXTS], calibration)
    with pytest.raises(ValueError, match="quantization_config"):
        score_layers(model_dir, calibration, tmp_path / "s.json", tmp_path / "s.csv",
                     tmp_path / "s.png", progress=False)


def test_layer_removal_perplexity_equals_the_sliced_model(llama, tiny_llama_dir, tmp_path):
    """Kim et al.'s criterion on the live model equals the perplexity of the model actually
    sliced without that layer, and the live model is restored afterwards."""
    from secateurs.prune.scoring import batches_nll, layer_removal_perplexity
    from secateurs.prune.slicing import slice_model

    model, tokenizer = llama
    batches = calibration_batches(tokenizer, TEXTS, 32, batch_size=3)
    result = layer_removal_perplexity(model, batches, block_sizes=[2], progress=False)
    assert len(result["without_layer"]) == 6 and len(result["without_block"]["2"]) == 5
    assert len(model.model.layers) == 6 and model.config.num_hidden_layers == 6
    assert [layer.self_attn.layer_idx for layer in model.model.layers] == list(range(6))
    nll, count = batches_nll(model, batches, torch.device("cpu"))
    assert math.exp(nll / count) == pytest.approx(result["full"], rel=1e-9)
    slice_model(tiny_llama_dir, [0, 1, 3, 4, 5], tmp_path / "no2")
    sliced = AutoModelForCausalLM.from_pretrained(tmp_path / "no2", dtype=torch.float32).eval()
    with torch.no_grad():
        nll, count = batches_nll(sliced, batches, torch.device("cpu"))
    assert math.exp(nll / count) == pytest.approx(result["without_layer"][2], rel=1e-5)
    slice_model(tiny_llama_dir, [0, 3, 4, 5], tmp_path / "no12")
    sliced = AutoModelForCausalLM.from_pretrained(tmp_path / "no12", dtype=torch.float32).eval()
    nll, count = batches_nll(sliced, batches, torch.device("cpu"))
    assert math.exp(nll / count) == pytest.approx(result["without_block"]["2"][1], rel=1e-5)


@pytest.mark.parametrize("arch", ["falcon", "gpt_neox", "gemma2", "qwen2"])
def test_hooks_work_across_architectures(arch):
    """Whatever the layer's call convention (positional or keyword hidden states, tensor or
    tuple output), the hooked n=1 metrics equal those from output_hidden_states for the
    layers before the final norm."""
    from test_slicing import _configs

    config, _ = _configs()[arch]
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config).eval()
    ids = torch.randint(3, config.vocab_size, (2, 10))
    mask = torch.ones_like(ids)
    mask[1, 6:] = 0
    result = score_model(model, [{"input_ids": ids, "attention_mask": mask}], max_block=2,
                         progress=False)
    cos_sum, tokens = torch.zeros(5, dtype=torch.float64), 0
    with torch.no_grad():
        for row, length in ((0, 10), (1, 6)):
            states = model(input_ids=ids[row:row + 1, :length], output_hidden_states=True,
                           use_cache=False).hidden_states
            tokens += length
            for layer in range(5):  # hidden_states[6] is after the final norm: skipped
                cos_sum[layer] += torch.nn.functional.cosine_similarity(
                    states[layer][0].double(), states[layer + 1][0].double(), dim=-1).sum()
    expected = (1 - cos_sum / tokens).tolist()
    assert result["block_influence"][:5] == pytest.approx(expected, abs=1e-5)
    assert all(math.isfinite(v) for v in result["block_influence"])


def test_bfloat16_scores_stay_close_to_float32(llama, tiny_llama_dir):
    model, tokenizer = llama
    batches = calibration_batches(tokenizer, TEXTS, 32, batch_size=3)
    full = score_model(model, batches, max_block=2, progress=False)
    half = AutoModelForCausalLM.from_pretrained(tiny_llama_dir, dtype=torch.bfloat16).eval()
    low = score_model(half, batches, max_block=2, progress=False)
    assert all(math.isfinite(v) for v in low["block_influence"])
    assert low["block_influence"] == pytest.approx(full["block_influence"], abs=0.02)
    assert low["angular_distance"]["last_token"]["2"] == pytest.approx(
        full["angular_distance"]["last_token"]["2"], abs=0.02)


def test_micro_batches_give_the_same_scores(llama):
    """Splitting a batch into passes of fewer rows (the memory bound) changes no score,
    and the forward pass stopped after the last layer leaves the model usable."""
    model, tokenizer = llama
    batches = calibration_batches(tokenizer, TEXTS, 64, batch_size=6)
    hooks_before = list(model.model.layers[0]._forward_hooks)  # transformers adds its own
    whole = score_model(model, batches, progress=False, micro_batch=6)
    split = score_model(model, batches, progress=False, micro_batch=4)
    assert split["samples"] == whole["samples"] and split["tokens"] == whole["tokens"]
    assert split["block_influence"] == pytest.approx(whole["block_influence"], abs=1e-6)
    for variant in ("last_token", "all_tokens"):
        for n, row in whole["angular_distance"][variant].items():
            assert split["angular_distance"][variant][n] == pytest.approx(row, abs=1e-6)
    assert list(model.model.layers[0]._forward_hooks) == hooks_before  # ours are removed
    with torch.no_grad():
        logits = model(**batches[0], use_cache=False).logits
    assert logits.shape[:2] == batches[0]["input_ids"].shape
    with pytest.raises(ValueError, match="micro_batch"):
        score_model(model, batches, progress=False, micro_batch=0)


def test_window_smaller_than_the_model_scores_like_the_full_window(llama):
    """With max_block < L the window ring wraps around; the blocks it keeps score exactly
    as with a window of every layer."""
    model, tokenizer = llama
    batches = calibration_batches(tokenizer, TEXTS, 48, batch_size=4)
    full = score_model(model, batches, progress=False)
    small = score_model(model, batches, max_block=2, progress=False)
    assert set(small["angular_distance"]["all_tokens"]) == {"1", "2"}
    for variant in ("last_token", "all_tokens"):
        for n in ("1", "2"):
            assert small["angular_distance"][variant][n] == pytest.approx(
                full["angular_distance"][variant][n], abs=1e-6)
    assert small["block_influence"] == pytest.approx(full["block_influence"], abs=1e-6)
