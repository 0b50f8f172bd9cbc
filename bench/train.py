"""Benchmark: training throughput and padding share, with and without packing.

Runs the real chat_sft trainer (`secateurs.train.sft.build_sft_trainer`) twice on the same
conversations and model: once padded per batch (the unpacked baseline), once with trl's
BFD packing (padding-free rows, documents kept apart by position_ids). Prints, for each:
the share of padding positions in the batches, real (non-padding) tokens per second, and
the packed/unpacked throughput ratio measured in this process. On CUDA it also reports model
FLOPs utilisation (6 * params * tokens/s over the GPU's bf16 peak).

    .venv/bin/python bench/train.py                  # CPU: small Llama, ~1-2 minutes
    .venv/bin/python bench/train.py --size 1b        # GPU: ~1B Llama in bf16, MFU
    .venv/bin/python bench/train.py --heal-quality   # demo: pruned vs healed vs distilled ppl

`--heal-quality` measures what healing is for, on real text (C4 English and Alpaca-GPT4
Chinese from ../shared/real-data): pretrain a small Llama from random init with heal(),
drop a third of its layers, heal the pruned model at one token budget plainly and with
distillation from the unpruned model, and print held-out perplexity per language for
each, with the distilled/plain ratio.

Data: LLaMA-Factory's alpaca_en_demo.json from ../shared/real-data when present (real,
varied lengths), otherwise synthetic conversations with lengths drawn from 20 to 400 words.
"""

from __future__ import annotations

import sys

import argparse
import json
import logging
import random
import tempfile
import time
from pathlib import Path

import torch
from transformers import TrainerCallback

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from secateurs.data.chat import prepare_chat_data  # noqa: E402
from secateurs.train.sft import build_sft_trainer  # noqa: E402

REAL_ALPACA = REPO.parent / "shared" / "real-data" / "hiyouga+LLaMA-Factory" / "alpaca_en_demo.json"
SIZES = {  # hidden, layers, heads, kv heads, intermediate
    "tiny": (128, 4, 4, 2, 352),
    "small": (256, 6, 8, 4, 688),
    "1b": (2048, 16, 32, 8, 5632),
}
PEAK_BF16_FLOPS = {"H100": 989e12, "H200": 989e12, "A100": 312e12, "L40S": 362e12}


def make_data(root: Path, n: int) -> Path:
    if REAL_ALPACA.exists():
        source = REAL_ALPACA
    else:
        rng = random.Random(0)
        words = "the river town mills grind wheat barley triangle angles sum light water".split()
        rows = [{"instruction": " ".join(rng.choices(words, k=rng.randint(5, 40))), "input": "",
                 "output": " ".join(rng.choices(words, k=rng.randint(20, 400)))} for _ in range(n)]
        source = root / "synthetic.json"
        source.write_text(json.dumps(rows))
    prepare_chat_data([{"path": str(source), "format": "alpaca"}], root / "chat.jsonl",
                      root / "stats.json", max_examples=n)
    return root / "chat.jsonl"


def make_model(root: Path, chat_jsonl: Path, size: str) -> Path:
    from secateurs.demo.model import init_llama
    from secateurs.demo.tokenizer import train_tokenizer

    texts = [m["content"] for line in chat_jsonl.read_text().splitlines()
             for m in json.loads(line)["messages"]]
    train_tokenizer(texts, root / "tok", vocab_size=4096 if size != "1b" else 32000)
    hidden, layers, heads, kv, inter = SIZES[size]
    init_llama(root / "tok", root / "model", hidden_size=hidden, num_hidden_layers=layers,
               num_attention_heads=heads, num_key_value_heads=kv, intermediate_size=inter)
    return root / "model"


def padding_share(trainer, steps: int, pad_id: int) -> float:
    """Share of batch positions that are padding, over the batches `steps` steps consume."""
    total = pad = 0
    for i, batch in enumerate(trainer.get_train_dataloader()):
        if i >= steps * trainer.args.gradient_accumulation_steps:
            break
        ids = batch["input_ids"]
        total += ids.numel()
        if "attention_mask" in batch:
            pad += int((batch["attention_mask"] == 0).sum())
        else:
            pad += int((ids == pad_id).sum())
    return pad / max(total, 1)


class StepClock(TrainerCallback):
    """Time and tokens seen at the end of every optimizer step.

    Throughput is taken between the end of step `warmup` and the last step, so CUDA start-up,
    the first steps' allocations and the final save do not count: with a few dozen steps
    they would dominate, and MFU would measure the overhead instead of the training.
    """

    def __init__(self, warmup: int = 2):
        self.warmup, self.marks = warmup, []

    def on_step_end(self, args, state, control, **kwargs):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        self.marks.append((time.perf_counter(), int(state.num_input_tokens_seen)))

    def steady_tokens_per_second(self) -> float | None:
        if len(self.marks) <= self.warmup + 1:
            return None
        (t0, n0), (t1, n1) = self.marks[self.warmup - 1], self.marks[-1]
        return (n1 - n0) / (t1 - t0)


def run(model_dir: Path, chat_jsonl: Path, root: Path, *, packing: bool, steps: int, batch: int,
        max_length: int, bf16: bool) -> dict:
    config = {"method": "full", "learning_rate": 1e-4, "max_steps": steps, "batch_size": batch,
              "max_length": max_length, "packing": packing, "lr_scheduler": "constant",
              "save_steps": 10 ** 6, "logging_steps": 10 ** 6, "bf16": bf16, "disable_tqdm": True,
              "truncation": "keep_start"}
    tag = "packed" if packing else "padded"
    trainer, tokenizer = build_sft_trainer(model_dir, chat_jsonl, checkpoint_dir=root / f"ckpt-{tag}",
                                           config=config)
    share = padding_share(trainer, steps, tokenizer.pad_token_id)
    clock = StepClock()
    trainer.add_callback(clock)
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    start = time.perf_counter()
    trainer.train()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    tokens = int(trainer.state.num_input_tokens_seen)
    params = sum(p.numel() for p in trainer.model.parameters())
    steady = clock.steady_tokens_per_second()
    return {"mode": tag, "padding_share": share, "tokens": tokens, "seconds": seconds,
            "tokens_per_second": steady or tokens / seconds, "params": params,
            "whole_run_tokens_per_second": tokens / seconds}


def mfu(result: dict) -> float | None:
    if not torch.cuda.is_available():
        return None
    name = torch.cuda.get_device_name()
    peak = next((v for k, v in PEAK_BF16_FLOPS.items() if k in name), None)
    return 6 * result["params"] * result["tokens_per_second"] / peak if peak else None


# ----------------------------------------------------------------------------- heal quality

REAL = REPO.parent / "shared" / "real-data" / "hiyouga+LLaMA-Factory"


def _texts() -> dict[str, list[str]]:
    if not (REAL / "c4_demo.jsonl").exists():
        raise SystemExit(f"--heal-quality needs {REAL} (real C4 and Chinese Alpaca text)")
    en = [json.loads(line)["text"] for line in (REAL / "c4_demo.jsonl").read_text().splitlines()]
    zh = [r["instruction"] + "\n" + r["output"] for r in json.loads((REAL / "alpaca_zh_demo.json").read_text())]
    return {"en": en, "zh": zh}


def _perplexity(model_dir: Path, tokenizer, texts: list[str], max_len: int) -> float:
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for text in texts:
            ids = tokenizer(text, return_tensors="pt")["input_ids"][:, :max_len]
            if ids.shape[1] < 2:
                continue
            loss = model(input_ids=ids, labels=ids, use_cache=False).loss
            total += float(loss) * (ids.shape[1] - 1)
            count += ids.shape[1] - 1
    return float(torch.exp(torch.tensor(total / count)))


def _drop_layers(model_dir: Path, out: Path, drop: list[int]) -> Path:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from secateurs.prune.layers import delete_layers_in_memory

    model = AutoModelForCausalLM.from_pretrained(model_dir)
    keep = [i for i in range(model.config.num_hidden_layers) if i not in drop]
    delete_layers_in_memory(model, keep)
    model.save_pretrained(out)
    AutoTokenizer.from_pretrained(model_dir).save_pretrained(out)
    return out


def heal_quality(args) -> None:
    import pyarrow as pa
    from transformers import AutoTokenizer

    from secateurs.demo.model import init_llama
    from secateurs.demo.tokenizer import train_tokenizer
    from secateurs.train.heal import heal
    from secateurs.io import write_parquet
    from secateurs.data.packing import tokenize_and_pack

    texts = _texts()
    held = {lang: docs[:len(docs) // 10] for lang, docs in texts.items()}
    train = [d for lang, docs in texts.items() for d in docs[len(docs) // 10:]]
    random.Random(0).shuffle(train)
    seq = 128
    base_cfg = {"batch_size": 8, "gradient_accumulation_steps": 1, "lr_scheduler": "cosine",
                "warmup_ratio": 0.05, "weight_decay": 0.0, "save_steps": 10 ** 6, "logging_steps": 25,
                "seed": 0, "bf16": "auto", "disable_tqdm": True}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        train_tokenizer(train, root / "tok", vocab_size=1024)
        write_parquet(pa.table({"text": train}), root / "train.parquet")
        meta = tokenize_and_pack(root / "train.parquet", root / "tok", root / "packed", seq_len=seq,
                                 threads=1)
        init_llama(root / "tok", root / "init", hidden_size=64, num_hidden_layers=6,
                   num_attention_heads=4, num_key_value_heads=2, intermediate_size=172)
        per_step = 8 * seq
        heal(root / "init", root / "packed", root / "base", checkpoint_dir=root / "c0", log_csv=root / "l0.csv",
             config={**base_cfg, "learning_rate": 3e-3, "token_budget": args.pretrain_steps * per_step})
        _drop_layers(root / "base", root / "pruned", drop=[2, 3])
        budget = args.heal_steps * per_step
        heal(root / "pruned", root / "packed", root / "healed", checkpoint_dir=root / "c1",
             log_csv=root / "l1.csv", config={**base_cfg, "learning_rate": 1e-3, "token_budget": budget})
        heal(root / "pruned", root / "packed", root / "distilled", checkpoint_dir=root / "c2",
             log_csv=root / "l2.csv", teacher_dir=root / "base",
             config={**base_cfg, "learning_rate": 1e-3, "token_budget": budget,
                     "distill": {"enabled": True, "alpha": 0.5, "temperature": 1.0}})
        tokenizer = AutoTokenizer.from_pretrained(root / "tok")
        table = {name: {lang: _perplexity(root / name, tokenizer, docs, seq) for lang, docs in held.items()}
                 for name in ("base", "pruned", "healed", "distilled")}
    print(f"corpus {meta['num_tokens']:,} tokens; pretrain {args.pretrain_steps} steps, heal "
          f"{args.heal_steps} steps x {per_step} tokens; 6 -> 4 layers (dropped 2, 3)")
    for name, row in table.items():
        print(f"{name:>9}: " + "  ".join(f"ppl[{lang}] {v:8.2f}" for lang, v in row.items()))
    for lang in held:
        print(f"distilled / healed perplexity [{lang}]: {table['distilled'][lang] / table['healed'][lang]:.3f}"
              f"   healed / pruned [{lang}]: {table['healed'][lang] / table['pruned'][lang]:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=sorted(SIZES), default="tiny")
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--max-length", type=int, default=512)
    parser.add_argument("--examples", type=int, default=400)
    parser.add_argument("--heal-quality", action="store_true")
    parser.add_argument("--pretrain-steps", type=int, default=150)
    parser.add_argument("--heal-steps", type=int, default=40)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if args.heal_quality:
        return heal_quality(args)
    torch.manual_seed(0)
    bf16 = torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        chat = make_data(root, args.examples)
        model = make_model(root, chat, args.size)
        results = [run(model, chat, root, packing=p, steps=args.steps, batch=args.batch,
                       max_length=args.max_length, bf16=bf16) for p in (False, True)]
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"
    print(f"device={device} size={args.size} params={results[0]['params']:,} steps={args.steps} "
          f"batch={args.batch} max_length={args.max_length} data={'alpaca_en_demo' if REAL_ALPACA.exists() else 'synthetic'}")
    for r in results:
        util = mfu(r)
        print(f"{r['mode']:>7}: padding {100 * r['padding_share']:5.1f}%  real tokens {r['tokens']:>7,}  "
              f"{r['tokens_per_second']:>9.1f} tok/s" + (f"  MFU {100 * util:.1f}%" if util else ""))
    ratio = results[1]["tokens_per_second"] / results[0]["tokens_per_second"]
    print(f"packed / padded tokens/s ratio: {ratio:.2f}x (target on GPU >= 1.3x)")


if __name__ == "__main__":
    main()
