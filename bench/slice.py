"""Benchmark slice_model on a generated >= 1 GB model: time vs a plain copy, peak memory.

    .venv/bin/python bench/slice.py [--layers 18] [--hidden 2048] [--workdir DIR] [--keep-files]

Builds a Llama-shaped bf16 model with random weights on disk (about 2.1 GB by default,
written shard by shard), keeps 3/4 of its layers (a contiguous block removed, as a `block`
plan does) and prints:

- wall time of `slice_model` over a plain copy (`shutil.copyfile`) of a file holding
  exactly the kept tensors' bytes (target <= 1.3), median of 3 alternating runs;
- peak RSS growth of a child process running `slice_model` after its imports, against the
  largest tensor (target <= 1.1 x the largest tensor, independent of model size);
- the same two numbers for mergekit's passthrough (`mergekit-yaml`) when installed.
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import argparse
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import time


def generate_model(out: Path, layers: int, hidden: int, intermediate: int, vocab: int) -> None:
    """Random bf16 Llama weights written a few layers per shard (never the whole model)."""
    import torch
    from safetensors.torch import save_file

    out.mkdir(parents=True, exist_ok=True)
    config = {"architectures": ["LlamaForCausalLM"], "model_type": "llama",
              "hidden_size": hidden, "intermediate_size": intermediate,
              "num_hidden_layers": layers, "num_attention_heads": hidden // 128,
              "num_key_value_heads": hidden // 128, "vocab_size": vocab,
              "max_position_embeddings": 4096, "rms_norm_eps": 1e-5,
              "tie_word_embeddings": False, "dtype": "bfloat16"}
    (out / "config.json").write_text(json.dumps(config, indent=2))

    def rand(*shape):
        return torch.empty(shape, dtype=torch.float32).normal_(std=0.02).to(torch.bfloat16)

    groups = [{"model.embed_tokens.weight": lambda: rand(vocab, hidden)}]
    for i in range(layers):
        p = f"model.layers.{i}."
        groups.append({
            p + "self_attn.q_proj.weight": lambda: rand(hidden, hidden),
            p + "self_attn.k_proj.weight": lambda: rand(hidden, hidden),
            p + "self_attn.v_proj.weight": lambda: rand(hidden, hidden),
            p + "self_attn.o_proj.weight": lambda: rand(hidden, hidden),
            p + "mlp.gate_proj.weight": lambda: rand(intermediate, hidden),
            p + "mlp.up_proj.weight": lambda: rand(intermediate, hidden),
            p + "mlp.down_proj.weight": lambda: rand(hidden, intermediate),
            p + "input_layernorm.weight": lambda: torch.ones(hidden, dtype=torch.bfloat16),
            p + "post_attention_layernorm.weight": lambda: torch.ones(hidden,
                                                                      dtype=torch.bfloat16)})
    groups.append({"model.norm.weight": lambda: torch.ones(hidden, dtype=torch.bfloat16),
                   "lm_head.weight": lambda: rand(vocab, hidden)})
    shards = [groups[i:i + 4] for i in range(0, len(groups), 4)]
    weight_map, total = {}, 0
    for n, shard in enumerate(shards, start=1):
        name = f"model-{n:05d}-of-{len(shards):05d}.safetensors"
        tensors = {k: make() for group in shard for k, make in group.items()}
        save_file(tensors, out / name, metadata={"format": "pt"})
        total += sum(t.numel() * t.element_size() for t in tensors.values())
        weight_map.update({k: name for k in tensors})
        del tensors
    (out / "model.safetensors.index.json").write_text(json.dumps(
        {"metadata": {"total_size": total}, "weight_map": weight_map}))


def kept_bytes_file(model_dir: Path, keep: list[int], out: Path) -> int:
    """A file with exactly the bytes slice_model copies, for the plain-copy baseline."""
    from secateurs.prune.shards import copy_range, tensor_sources
    from secateurs.prune.slicing import renamed_tensors

    tensors = renamed_tensors(tensor_sources(model_dir), keep, _num_layers(model_dir), "bench")
    total = 0
    with open(out, "wb") as dst:
        for _, src in tensors:
            with open(src.file, "rb") as f:
                copy_range(f, dst, src.start, src.nbytes)
            total += src.nbytes
    return total


def _num_layers(model_dir: Path) -> int:
    return json.loads((model_dir / "config.json").read_text())["num_hidden_layers"]


def largest_tensor(model_dir: Path) -> int:
    from secateurs.prune.shards import tensor_sources

    return max(s.nbytes for s in tensor_sources(model_dir))


CHILD = """
import json, sys, time
sys.path.insert(0, {repo!r})
import transformers, torch  # imported before the baseline: only slicing's own growth counts
from pathlib import Path
import secateurs.prune.shards
from secateurs.prune.slicing import _derived_layer_types, slice_model
secateurs.prune.shards.USE_COPY_FILE_RANGE = {fast!r}
def rss(field):
    for line in open("/proc/self/status"):
        if line.startswith(field):
            return int(line.split()[1]) * 1024
before = rss("VmRSS:")
_derived_layer_types(Path({src!r}), False)  # transformers' config registry: a fixed cost
after_config = rss("VmRSS:")
start = time.perf_counter()
slice_model({src!r}, {keep!r}, {out!r})
print(json.dumps({{"seconds": time.perf_counter() - start, "before": before,
                   "after_config": after_config, "peak": rss("VmHWM:")}}))
"""


def slice_memory(model_dir: Path, keep: list[int], out: Path) -> dict:
    import secateurs.prune.shards

    code = CHILD.format(repo=str(REPO), src=str(model_dir), keep=keep, out=str(out),
                        fast=secateurs.prune.shards.USE_COPY_FILE_RANGE)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    shutil.rmtree(out, ignore_errors=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def run_mergekit(model_dir: Path, keep: list[int], out: Path) -> dict | None:
    """mergekit-yaml on the recipe slice_model writes; wall time and child peak RSS."""
    exe = Path(sys.executable).with_name("mergekit-yaml")
    if not exe.exists():
        return None
    from secateurs.prune.mergekit import mergekit_yaml

    recipe = out.with_suffix(".yml")
    recipe.write_text(mergekit_yaml(str(model_dir), keep, dtype="bfloat16"))
    start = time.perf_counter()
    proc = subprocess.Popen([str(exe), str(recipe), str(out), "--quiet"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        print("mergekit failed:", proc.stderr.read().decode()[-2000:])
        return None
    shutil.rmtree(out, ignore_errors=True)
    return {"seconds": seconds, "peak": usage.ru_maxrss * 1024}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, default=18)
    parser.add_argument("--hidden", type=int, default=2048)
    parser.add_argument("--intermediate", type=int, default=5632)
    parser.add_argument("--vocab", type=int, default=32000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--keep-files", action="store_true")
    parser.add_argument("--portable-copy", action="store_true",
                        help="force 8 MiB read/write chunks instead of os.copy_file_range")
    args = parser.parse_args()

    import secateurs.prune.shards
    from secateurs.prune.slicing import slice_model

    if args.portable_copy:
        secateurs.prune.shards.USE_COPY_FILE_RANGE = False

    work = Path(args.workdir or tempfile.mkdtemp(prefix="secateurs-bench-slice-"))
    work.mkdir(parents=True, exist_ok=True)
    model = work / "model"
    try:
        if not (model / "model.safetensors.index.json").exists():
            t = time.perf_counter()
            generate_model(model, args.layers, args.hidden, args.intermediate, args.vocab)
            print(f"generated model in {time.perf_counter() - t:.1f} s")
        size = sum(p.stat().st_size for p in model.glob("*.safetensors"))
        drop = max(1, args.layers // 4)
        start = (args.layers - drop) // 2
        keep = [i for i in range(args.layers) if not start <= i < start + drop]
        kept = kept_bytes_file(model, keep, work / "kept.bin")
        biggest = largest_tensor(model)
        print(f"model {size / 1e9:.2f} GB, {args.layers} layers, removing [{start}, "
              f"{start + drop}); kept bytes {kept / 1e9:.2f} GB; largest tensor "
              f"{biggest / 1e6:.0f} MB")

        copy_times, slice_times = [], []
        for _ in range(args.repeats):
            t = time.perf_counter()
            shutil.copyfile(work / "kept.bin", work / "copy.bin")
            copy_times.append(time.perf_counter() - t)
            os.unlink(work / "copy.bin")
            t = time.perf_counter()
            slice_model(model, keep, work / "sliced")
            slice_times.append(time.perf_counter() - t)
            shutil.rmtree(work / "sliced")
        copy_s, slice_s = statistics.median(copy_times), statistics.median(slice_times)
        print(f"plain copy of kept bytes: {copy_s:.2f} s  ({kept / copy_s / 1e9:.2f} GB/s)")
        print(f"slice_model:              {slice_s:.2f} s  ({kept / slice_s / 1e9:.2f} GB/s)")
        print(f"RATIO time slice/copy = {slice_s / copy_s:.2f}  (target <= 1.3)")

        mem = slice_memory(model, keep, work / "sliced-mem")
        growth = mem["peak"] - mem["after_config"]
        registry = mem["after_config"] - mem["before"]
        print(f"slice_model peak RSS growth {growth / 1e6:.1f} MB, plus {registry / 1e6:.0f} MB "
              f"once for transformers' config registry (process peak {mem['peak'] / 1e6:.0f} "
              f"MB); RATIO growth/largest tensor = {growth / biggest:.3f}  (target <= 1.1; "
              f"{(growth + registry) / biggest:.3f} with the registry)")

        if args.portable_copy:
            return
        merged = run_mergekit(model, keep, work / "mergekit")
        if merged is None:
            print("mergekit: not installed or failed; skipped")
        else:
            print(f"mergekit-yaml passthrough: {merged['seconds']:.2f} s (RATIO over copy "
                  f"{merged['seconds'] / copy_s:.2f}), peak RSS {merged['peak'] / 1e6:.0f} MB "
                  f"(RATIO over largest tensor {merged['peak'] / biggest:.2f})")
    finally:
        if not args.keep_files and args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
