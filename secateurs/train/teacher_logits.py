"""Cached teacher logits: the unpruned model's top-k next-token log-probabilities, once.

Distilling a pruned model from its parent (Minitron) needs the parent's next-token
distribution at every training position. Run beside the student, the teacher costs a
forward pass of the larger model at every step of every healing run, and its weights on
the GPU. The packed healing data is fixed, so the teacher's answer is too: this module runs
the teacher once over `packed/train.parquet` and keeps, per position, the `top_k` most
likely next tokens and their log-probabilities under the full vocabulary. Healing reads
them (`secateurs.train.distill`, KL on the renormalised top-k) and never loads the teacher.

Layout of a cache directory (next to packed/, `results/data/teacher_logits`):

- `shard-00000.safetensors`, ...: packed rows [i * rows_per_shard, (i + 1) * rows_per_shard),
  tensors `ids` [rows, seq_len, k] (uint16 when the vocabulary fits, else int32) and
  `logprobs` [rows, seq_len, k] float16, highest first;
- `meta.json`: what the cache is for (the teacher's and the packed data's fingerprints,
  k, seq_len), its size on disk, how long it took and how much of the teacher's
  probability the top-k hold.

Cost per training token: k x (2 + 2) bytes with uint16 ids (256 B at k = 64), k x (4 + 2)
with int32 ones. A build works in `work_dir` (outside the rule's outputs, so Snakemake
keeps it after a kill) shard by shard, each shard written whole or not at all, and a rerun
computes only the missing shards; the finished directory is moved into place at the end.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import shutil
import time
from pathlib import Path
from typing import Callable

import torch

from secateurs.data.packing import load_packed, read_meta
from secateurs.io import atomic_output, read_json, write_json
from secateurs.train.distill import teacher_top_k

log = logging.getLogger(__name__)

FORMAT = "secateurs-teacher-logits-1"
META = "meta.json"
IDENTITY = "identity.json"
PROGRESS = "progress.json"  # in the work folder: per-shard top-k mass, build seconds so far
UINT16_VOCAB = 1 << 16


class TeacherCacheMismatch(ValueError):
    """A cache built for other packed data, another teacher or another k."""


# ----------------------------------------------------------------------------- identity


def sampled_digest(path: str | os.PathLike, samples: int = 64, block: int = 1 << 12) -> str:
    """sha256 of a file's size, its first and last 64 KiB and `samples` blocks spread over it.

    A cheap fingerprint of a multi-gigabyte weight or data file: two different models or
    packings differ in nearly every block, and reading 300 KiB beats hashing 60 GB."""
    path = Path(path)
    size = path.stat().st_size
    digest = hashlib.sha256(str(size).encode())
    with path.open("rb") as handle:
        for offset in [0, max(0, size - (1 << 16))] + [size * i // samples for i in range(samples)]:
            handle.seek(offset)
            digest.update(handle.read(1 << 16 if offset in (0, max(0, size - (1 << 16))) else block))
    return digest.hexdigest()


def model_identity(model_dir: str | os.PathLike) -> dict:
    """The teacher as the cache knows it: its config and a digest of each weight file."""
    model_dir = Path(model_dir)
    weights = sorted(model_dir.glob("*.safetensors"))
    if not weights:
        raise FileNotFoundError(f"{model_dir} holds no *.safetensors weights: the teacher must "
                                "be a Hugging Face model directory in safetensors")
    return {"config": read_json(model_dir / "config.json"),
            "weights": {p.name: sampled_digest(p) for p in weights}}


def packed_identity(packed_dir: str | os.PathLike) -> dict:
    """The packed data as the cache knows it: the packer's meta.json and a digest of the rows."""
    packed_dir = Path(packed_dir)
    return {"meta": read_json(packed_dir / "meta.json"),
            "train": sampled_digest(packed_dir / "train.parquet")}


def cache_identity(teacher_dir, packed_dir, top_k: int) -> dict:
    """What a cache is for; its sha256 names the build's work folder."""
    identity = {"format": FORMAT, "top_k": int(top_k), "teacher": model_identity(teacher_dir),
                "packed": packed_identity(packed_dir)}
    blob = json.dumps(identity, sort_keys=True, default=str).encode()
    return {**identity, "sha256": hashlib.sha256(blob).hexdigest()}


# ----------------------------------------------------------------------------- building


def shard_name(index: int) -> str:
    return f"shard-{index:05d}.safetensors"


def build_teacher_cache(teacher_dir, packed_dir, out_dir, *, work_dir, top_k: int,
                        batch_size: int, rows_per_shard: int, device: str = "auto",
                        on_shard: Callable[[int, int], None] | None = None) -> dict:
    """Run the teacher over every packed row once; write the top-k cache to `out_dir`.

    Resumes a killed build: shards already in `work_dir/<identity>` are kept. `on_shard(done,
    total)` is called after each shard is written (progress; a test stops a build there).
    Returns the meta dict also written to `out_dir/meta.json`.
    """
    if top_k is None or int(top_k) < 1:
        raise ValueError(f"heal.distill.top_k={top_k!r}: a cache keeps the top k entries per "
                         "position; set a positive k (64 is typical)")
    started = time.perf_counter()
    identity = cache_identity(teacher_dir, packed_dir, top_k)
    work = Path(work_dir) / identity["sha256"][:12]
    work.mkdir(parents=True, exist_ok=True)
    write_json(identity, work / IDENTITY)
    dataset = load_packed(packed_dir).select_columns(["input_ids", "position_ids"])
    rows, seq_len = len(dataset), int(read_meta(packed_dir)["seq_len"])
    shards = math.ceil(rows / rows_per_shard)
    todo = [i for i in range(shards) if not (work / shard_name(i)).exists()]
    if len(todo) < shards:
        log.info("resuming the teacher cache in %s: %d of %d shards done", work,
                 shards - len(todo), shards)
    teacher = _load_teacher(teacher_dir, device) if todo else None
    vocab = int(read_json(Path(teacher_dir) / "config.json")["vocab_size"])
    progress = read_json(work / PROGRESS) if (work / PROGRESS).exists() else {"mass": {}, "seconds": 0.0}
    for index in todo:
        first, last = index * rows_per_shard, min(rows, (index + 1) * rows_per_shard)
        logprobs, ids = _teacher_top_k(teacher, dataset, first, last, top_k, batch_size)
        _write_shard(work / shard_name(index), ids, logprobs, vocab)
        # the build's whole time and the top-k's share of the teacher's probability, kept
        # across a resume
        progress["mass"][str(index)] = float(logprobs.float().exp().sum(-1).mean())
        progress["seconds"] += time.perf_counter() - started
        started = time.perf_counter()
        write_json(progress, work / PROGRESS)
        if on_shard:
            on_shard(shards - len(todo) + todo.index(index) + 1, shards)
    meta = _meta(identity, work, rows=rows, seq_len=seq_len, shards=shards,
                 rows_per_shard=rows_per_shard, vocab=vocab, mass=progress["mass"],
                 seconds=progress["seconds"] + time.perf_counter() - started,
                 resumed=len(todo) < shards)
    write_json(meta, work / META)
    with atomic_output(out_dir, directory=True) as tmp:
        for item in work.iterdir():
            if item.name.startswith("shard-") or item.name == META:
                shutil.move(str(item), tmp / item.name)
    shutil.rmtree(work, ignore_errors=True)
    log.info("teacher cache: %d rows x %d positions, top %d, %.1f MB in %.1f s (%.0f B per "
             "token); top-k mass %.4f", rows, seq_len, top_k, meta["bytes"] / 1e6, meta["seconds"],
             meta["bytes_per_token"], meta["mean_top_k_mass"])
    return meta


def _load_teacher(teacher_dir, device: str):
    from transformers import AutoModelForCausalLM

    device = ("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else device
    dtype = torch.bfloat16 if device.startswith("cuda") and torch.cuda.is_bf16_supported() \
        else torch.float32
    model = AutoModelForCausalLM.from_pretrained(teacher_dir, use_safetensors=True, dtype=dtype)
    return model.to(device).eval()


@torch.no_grad()
def _teacher_top_k(teacher, dataset, first: int, last: int, k: int, batch_size: int):
    """The top-k of rows [first, last), computed as training sees the rows: position_ids
    without an attention mask, so packed documents stay apart (secateurs.train.heal)."""
    device = next(teacher.parameters()).device
    values, ids = [], []
    for start in range(first, last, batch_size):
        batch = dataset[start:min(last, start + batch_size)]
        logits = teacher(input_ids=torch.tensor(batch["input_ids"], device=device),
                         position_ids=torch.tensor(batch["position_ids"], device=device),
                         use_cache=False).logits
        for row in logits:  # one row at a time: float32 log-softmax of [seq_len, vocab]
            i, v = teacher_top_k(row, k)
            values.append(v.to(torch.float16).cpu()[None])
            ids.append(i.cpu()[None])
    return torch.cat(values), torch.cat(ids)


def _write_shard(path: Path, ids: torch.Tensor, logprobs: torch.Tensor, vocab: int) -> None:
    from safetensors.torch import save_file

    id_dtype = torch.uint16 if vocab <= UINT16_VOCAB else torch.int32
    with atomic_output(path) as tmp:
        save_file({"ids": ids.to(id_dtype).contiguous(), "logprobs": logprobs.contiguous()},
                  str(tmp))


def _meta(identity, work: Path, *, rows, seq_len, shards, rows_per_shard, vocab, mass,
          seconds, resumed) -> dict:
    size = sum((work / shard_name(i)).stat().st_size for i in range(shards))
    weights = [min(rows_per_shard, rows - i * rows_per_shard) for i in range(shards)]
    mean_mass = sum(mass[str(i)] * w for i, w in enumerate(weights)) / max(1, rows)
    return {**{k: v for k, v in identity.items()}, "rows": rows, "seq_len": seq_len,
            "shards": shards, "rows_per_shard": rows_per_shard, "vocab_size": vocab,
            "id_dtype": "uint16" if vocab <= UINT16_VOCAB else "int32", "bytes": size,
            "bytes_per_token": size / max(1, rows * seq_len), "seconds": round(seconds, 2),
            "resumed": resumed, "mean_top_k_mass": round(mean_mass, 6)}


# ----------------------------------------------------------------------------- reading


class TeacherCache:
    """Random access to a cache's rows: what the collator reads for each training batch.

    Shards are memory-mapped by safetensors and opened on first use, so each DataLoader
    worker and each rank opens its own handles."""

    def __init__(self, cache_dir: str | os.PathLike):
        self.dir = Path(cache_dir)
        meta_path = self.dir / META
        if not meta_path.exists():
            raise FileNotFoundError(f"{meta_path} is missing: {self.dir} is not a finished "
                                    "teacher cache. Fix: build it with rule teacher_logits "
                                    "(python -m secateurs teacher-logits)")
        self.meta = read_json(meta_path)
        if self.meta.get("format") != FORMAT:
            raise TeacherCacheMismatch(f"{meta_path}: format {self.meta.get('format')!r}, this "
                                       f"code reads {FORMAT!r}. Fix: rebuild the cache")
        self.top_k, self.rows_per_shard = int(self.meta["top_k"]), int(self.meta["rows_per_shard"])
        self._handles: dict[int, object] = {}

    def check(self, *, packed_dir, teacher_dir=None, top_k: int | None = None) -> None:
        """Refuse a cache made for other packed data, another teacher or a different k."""
        fix = (f"Fix: rebuild it (rule teacher_logits, or python -m secateurs teacher-logits) "
               f"for this data and teacher, or point heal at the cache that was built for them")
        if packed_identity(packed_dir) != self.meta["packed"]:
            raise TeacherCacheMismatch(f"teacher cache {self.dir} was built for other packed data "
                                       f"than {packed_dir} (its meta.json or train.parquet "
                                       f"differ). {fix}")
        if teacher_dir is not None and model_identity(teacher_dir) != self.meta["teacher"]:
            raise TeacherCacheMismatch(f"teacher cache {self.dir} was built from another teacher "
                                       f"than {teacher_dir} (config or weights differ). {fix}")
        if top_k is not None and int(top_k) != self.top_k:
            raise TeacherCacheMismatch(f"teacher cache {self.dir} keeps the top {self.top_k} "
                                       f"entries, the config asks heal.distill.top_k={top_k}. {fix}")

    def rows(self, indices: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """(ids int64 [n, seq_len, k], logprobs float32 [n, seq_len, k]) of packed rows."""
        ids, logprobs = [], []
        for row in indices:
            handle = self._shard(int(row) // self.rows_per_shard)
            local = int(row) % self.rows_per_shard
            ids.append(handle.get_slice("ids")[local:local + 1])
            logprobs.append(handle.get_slice("logprobs")[local:local + 1])
        return torch.cat(ids).to(torch.int64), torch.cat(logprobs).float()

    def _shard(self, index: int):
        from safetensors import safe_open

        if index not in self._handles:
            self._handles[index] = safe_open(str(self.dir / shard_name(index)), framework="pt")
        return self._handles[index]

    def __getstate__(self):
        # DataLoader workers receive a copy: open handles do not cross processes
        return {**self.__dict__, "_handles": {}}
