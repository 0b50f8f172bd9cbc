"""Benchmark scoring against a plain forward pass on the same batches: time and memory.

    .venv/bin/python bench/score.py [--hidden 512] [--layers 8] [--batches 4] [--device auto]

A random Llama-shaped model is built in memory; the same right-padded batches go through
(a) a plain `model(..., use_cache=False)` and (b) `score_model` (hooks, Block Influence and
angular distance for every block size up to L-1, both variants; `--micro-batch N` forces
N rows per scoring pass instead of score_model's automatic split). Prints

- RATIO time score/forward (target <= 1.15), median of 3 alternating runs;
- RATIO peak memory score/forward (target <= 1.1): on CUDA `max_memory_allocated`, on CPU
  the peak RSS of a child process running only that pass (model included in both).
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, bench/ is sys.path[0]; bench/tokenize.py would shadow the stdlib module.
REPO = Path(__file__).resolve().parents[1]
sys.path[:] = [str(REPO)] + [p for p in sys.path if Path(p or ".").resolve() != REPO / "bench"]

import argparse
import json
import statistics
import subprocess
import time

import torch


def build(args):
    from transformers import LlamaConfig, LlamaForCausalLM

    from secateurs.prune.scoring import resolve_device, resolve_dtype

    device, dtype = resolve_device(args.device), resolve_dtype(args.dtype)
    config = LlamaConfig(vocab_size=args.vocab, hidden_size=args.hidden,
                         intermediate_size=args.hidden * 11 // 4,
                         num_hidden_layers=args.layers, num_attention_heads=args.hidden // 64,
                         num_key_value_heads=args.hidden // 64)
    torch.manual_seed(0)
    with torch.device(device):  # random init on the device itself: fast for big models on GPU
        model = LlamaForCausalLM(config).to(dtype=dtype).eval()
    generator = torch.Generator().manual_seed(0)
    batches = []
    for _ in range(args.batches):
        ids = torch.randint(10, args.vocab, (args.batch_size, args.seq_len), generator=generator)
        mask = torch.ones_like(ids)
        lengths = torch.randint(args.seq_len // 2, args.seq_len + 1, (args.batch_size,),
                                generator=generator)
        for row, length in enumerate(lengths.tolist()):
            mask[row, length:] = 0
        batches.append({"input_ids": ids, "attention_mask": mask})
    return model, batches, device


@torch.inference_mode()
def plain_forward(model, batches, device) -> None:
    for batch in batches:
        model(**{k: v.to(device) for k, v in batch.items()}, use_cache=False)


MICRO_BATCH = None  # --micro-batch: rows per scoring pass (None = score_model's default)


def scoring(model, batches, device) -> None:
    from secateurs.prune.scoring import score_model

    score_model(model, batches, progress=False, micro_batch=MICRO_BATCH)


def timed(fn, *args) -> float:
    if args[-1].type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    fn(*args)
    if args[-1].type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def peak_memory(args, mode: str, device) -> int:
    """Peak bytes of one pass: CUDA allocator peak in-process, else a child's peak RSS."""
    if device.type == "cuda":
        model, batches, device = build(args)
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        (plain_forward if mode == "forward" else scoring)(model, batches, device)
        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated()
        del model
        torch.cuda.empty_cache()
        return peak
    argv = [sys.executable, __file__, "--child", mode] + _forward_args(args)
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])["peak"]


def _forward_args(args) -> list[str]:
    return [f"--{k.replace('_', '-')}={v}" for k, v in vars(args).items()
            if k not in ("child", "repeats") and v is not None]


def child(args) -> None:
    model, batches, device = build(args)
    (plain_forward if args.child == "forward" else scoring)(model, batches, device)
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            print(json.dumps({"peak": int(line.split()[1]) * 1024}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hidden", type=int, default=512)
    parser.add_argument("--layers", type=int, default=8)
    parser.add_argument("--vocab", type=int, default=8000)
    parser.add_argument("--batches", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--seq-len", type=int, default=256)
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--micro-batch", type=int, default=None,
                        help="rows per scoring pass (default: score_model's automatic choice)")
    parser.add_argument("--child", choices=["forward", "score"], default=None)
    args = parser.parse_args()
    global MICRO_BATCH
    MICRO_BATCH = args.micro_batch
    if args.child:
        child(args)
        return

    model, batches, device = build(args)
    params = sum(p.numel() for p in model.parameters())
    print(f"model {params / 1e6:.1f} M params, {args.layers} layers, hidden {args.hidden}, "
          f"{args.dtype} on {device}; {args.batches} batches of {args.batch_size}x"
          f"{args.seq_len} (padded)")
    timed(plain_forward, model, batches[:1], device)  # warm-up
    timed(scoring, model, batches[:1], device)
    forward_times, score_times = [], []
    for _ in range(args.repeats):
        forward_times.append(timed(plain_forward, model, batches, device))
        score_times.append(timed(scoring, model, batches, device))
    forward_s, score_s = statistics.median(forward_times), statistics.median(score_times)
    print(f"plain forward: {forward_s:.3f} s   score_model: {score_s:.3f} s")
    print(f"RATIO time score/forward = {score_s / forward_s:.3f}  (target <= 1.15)")
    del model
    forward_mem = peak_memory(args, "forward", device)
    score_mem = peak_memory(args, "score", device)
    kind = "CUDA max_memory_allocated" if device.type == "cuda" else "child peak RSS"
    print(f"peak memory ({kind}): forward {forward_mem / 1e6:.0f} MB, "
          f"score {score_mem / 1e6:.0f} MB")
    print(f"RATIO memory score/forward = {score_mem / forward_mem:.3f}  (target <= 1.1)")


if __name__ == "__main__":
    main()
