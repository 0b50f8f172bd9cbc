"""Training fixtures shared by the training tests: a packed directory in the packer's
format, a small heal config, and the arguments of a two-rank heal."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pyarrow as pa
from transformers import AutoTokenizer

from secateurs.io import write_json, write_parquet
from workflow import REPO

DOCS = [
    "The river town of Alder sits where two valleys meet; its mills grind wheat and barley.",
    "A triangle has three sides, and the sum of its angles is one hundred and eighty degrees.",
    "柏林是德國的首都，也是德國最大的城市，人口約三百六十萬。",
    "Photosynthesis turns light, water and carbon dioxide into sugar and oxygen.",
    "长江是中国最长的河流，全长约六千三百公里。",
    "數學是研究數量、結構以及空間等概念的一門學科。",
]

PACKED_SCHEMA = pa.schema([("input_ids", pa.list_(pa.int32())), ("position_ids", pa.list_(pa.int32()))])


def make_packed_dir(tokenizer_dir: Path, out: Path, *, seq_len: int = 32, copies: int = 6) -> Path:
    """A packed directory in secateurs.data.packing's format: docs joined by EOS, cut into rows of
    exactly seq_len, position_ids restarting at each document (a document split across rows
    restarts at 0 in the next row, as the packer does)."""
    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    ids, pos = [], []
    for doc in DOCS * copies:
        doc_ids = tok(doc)["input_ids"] + [tok.eos_token_id]
        ids += doc_ids
        pos += list(range(len(doc_ids)))
    rows = []
    for start in range(0, len(ids) - seq_len + 1, seq_len):
        p = pos[start:start + seq_len]
        if p[0] != 0:  # continuation of a document: restart its positions in this row
            first_new = next((i for i, v in enumerate(p) if v == 0), seq_len)
            p = list(range(first_new)) + p[first_new:]
        rows.append({"input_ids": ids[start:start + seq_len], "position_ids": p})
    out.mkdir(parents=True, exist_ok=True)
    write_parquet(rows, out / "train.parquet", schema=PACKED_SCHEMA)
    write_json({"seq_len": seq_len, "eos_token_id": tok.eos_token_id, "pad_token_id": tok.pad_token_id,
                "num_sequences": len(rows), "num_tokens": len(rows) * seq_len}, out / "meta.json")
    return out


def heal_cfg(**over) -> dict:
    cfg = {"method": "full", "learning_rate": 3e-3, "token_budget": 4 * 4 * 32, "batch_size": 4,
           "gradient_accumulation_steps": 1, "lr_scheduler": "cosine", "warmup_ratio": 0.1,
           "weight_decay": 0.0, "save_steps": 2, "logging_steps": 1, "seed": 0, "bf16": False,
           "disable_tqdm": True}
    cfg.update(over)
    return cfg



def two_rank_heal_args(tokenizer_dir, tmp_path) -> tuple[list[str], dict]:
    """A tiny model, packed data and a heal config for two ranks (two rows of 32 tokens
    each, two steps): the `python -m secateurs heal` arguments, and the environment a launcher runs them in."""
    from secateurs.demo.model import init_llama

    init_llama(tokenizer_dir, tmp_path / "model", hidden_size=64, num_hidden_layers=2,
               num_attention_heads=4, intermediate_size=128)
    packed = make_packed_dir(tokenizer_dir, tmp_path / "packed")
    (tmp_path / "heal.json").write_text(json.dumps(
        {"heal": heal_cfg(token_budget=2 * 2 * 2 * 32, batch_size=2, save_steps=1,
                          keep_checkpoints=True)}))
    args = ["heal", "--model", str(tmp_path / "model"), "--packed", str(packed),
            "--out", str(tmp_path / "out"), "--checkpoint-dir", str(tmp_path / "ckpt"),
            "--log-csv", str(tmp_path / "log.csv"), "--config", str(tmp_path / "heal.json"),
            "--summary-json", str(tmp_path / "summary.json")]
    return args, {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}


def labelled_spans(tokenizer, input_ids, labels) -> list[str]:
    """Each maximal run of tokens that carry a label (the loss), decoded; a label always
    equals its input token."""
    spans, current = [], []
    for token, label in zip(input_ids, labels):
        if label != -100:
            assert label == token
            current.append(token)
        elif current:
            spans.append(tokenizer.decode(current))
            current = []
    return spans + ([tokenizer.decode(current)] if current else [])
