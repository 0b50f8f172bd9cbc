"""The recovery curve: held-out bits per byte per language at token milestones of healing.

How fast a pruned model recovers is what a practitioner sizes a healing budget by
(ShortGPT, Minitron and Sheared-LLaMA all plot loss against tokens). The training loss
alone cannot show it: it is measured on training text, and it mixes the languages. This
callback scores a capped slice of the mix's held-out documents per language at the start
of healing (the pruned model) and at `heal.recovery.milestones` evenly spaced points of
the token budget, with no generation, so it stays cheap (a few seconds against minutes of
training; the time it takes is logged and recorded).

Documents are framed as in packing and evaluation (`secateurs.documents`): the start
token, the text, the separator; a long document is cut into windows of the packed
`seq_len`. Bits per byte (nats / ln 2 / UTF-8 bytes) compares across languages and
tokenizers where per-token perplexity does not. Every process runs the same forward
passes (ZeRO-3 shards need them all); the main process writes the CSV.
"""

from __future__ import annotations

import csv
import logging
import math
import os
import time
from pathlib import Path

import torch
from transformers import TrainerCallback

from secateurs.documents import framing
from secateurs.io import atomic_output

log = logging.getLogger(__name__)

COLUMNS = ["step", "tokens_seen", "language", "bits_per_byte", "nll", "tokens", "bytes",
           "documents", "seconds"]


def heldout_slice(path: str | os.PathLike, tokenizer, *, max_tokens: int,
                  seq_len: int) -> dict:
    """Windows of the first held-out documents of `path`, about `max_tokens` tokens.

    A document that would cross the cap is cut, in characters, to about the tokens left
    (and gets no separator: it did not end), so the byte count stays exact for the text
    that is scored.
    """
    import pyarrow.parquet as pq

    frame = framing(tokenizer)
    windows, n_tokens, n_bytes, docs = [], 0, 0, 0
    for text in pq.read_table(path, columns=["text"]).column("text").to_pylist():
        left = max_tokens - n_tokens
        if left <= 1:
            break
        if not text or not text.strip():
            continue
        ids = [frame.start, *tokenizer(text, add_special_tokens=False)["input_ids"],
               frame.separator]
        if len(ids) - 1 > left:
            text = text[:max(1, len(text) * (left - 1) // len(ids))]
            ids = [frame.start, *tokenizer(text, add_special_tokens=False)["input_ids"]]
        windows += [ids[i:i + seq_len + 1] for i in range(0, len(ids) - 1, seq_len)]
        n_tokens += len(ids) - 1
        n_bytes += len(text.encode("utf-8"))
        docs += 1
    if not windows:
        raise ValueError(f"heal.recovery: held-out file {path} has no non-empty `text`; "
                         "set heal.recovery.milestones: 0 or fix the mix's held-out split")
    return {"windows": windows, "bytes": n_bytes, "documents": docs}


@torch.no_grad()
def slice_nll(model, windows: list[list[int]], *, batch_size: int, pad_id: int) -> tuple[float, int]:
    """(sum of next-token NLL in nats, tokens scored) over right-padded windows."""
    device = next(model.parameters()).device
    total, count = 0.0, 0
    for first in range(0, len(windows), batch_size):
        chunk = windows[first:first + batch_size]
        width = max(len(w) for w in chunk)
        ids = torch.full((len(chunk), width), pad_id, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for row, window in enumerate(chunk):
            ids[row, :len(window)] = torch.tensor(window)
            mask[row, :len(window)] = 1
        ids, mask = ids.to(device), mask.to(device)
        logits = model(input_ids=ids, attention_mask=mask, use_cache=False).logits
        labels = ids[:, 1:].masked_fill(mask[:, 1:] == 0, -100)
        total += float(torch.nn.functional.cross_entropy(
            logits[:, :-1].float().reshape(-1, logits.shape[-1]), labels.reshape(-1),
            ignore_index=-100, reduction="sum"))
        count += int((labels != -100).sum())
    return total, count


def milestone_steps(max_steps: int, milestones: int) -> list[int]:
    """`milestones` evenly spaced optimizer steps ending at `max_steps` (no duplicates)."""
    return sorted({max(1, round(max_steps * k / milestones)) for k in range(1, milestones + 1)})


class RecoveryCallback(TrainerCallback):
    """Score the held-out slices at step 0 and at each milestone step; append to a CSV."""

    def __init__(self, heldout: dict, tokenizer, csv_path: str | os.PathLike, *, max_steps: int,
                 settings: dict, seq_len: int, resumed_step: int = 0, main_process: bool = True):
        self.steps = set(milestone_steps(max_steps, settings["milestones"]))
        self.batch_size = settings["batch_size"]
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        self.slices = {lang: heldout_slice(path, tokenizer, max_tokens=settings["max_tokens"],
                                           seq_len=seq_len) for lang, path in heldout.items()}
        self.path = Path(csv_path)
        self.main = main_process
        self.rows = [r for r in read_rows(self.path) if r["step"] <= resumed_step] \
            if resumed_step else []
        self.seconds = sum(r["seconds"] for r in self.rows)
        if self.main:
            write_rows(self.path, self.rows)

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        if state.global_step == 0 and not self.rows:
            self._measure(model, state)

    def on_step_end(self, args, state, control, model=None, **kwargs):
        if state.global_step in self.steps:
            self._measure(model, state)

    def _measure(self, model, state) -> None:
        was_training = model.training
        model.eval()
        for lang, data in self.slices.items():
            started = time.perf_counter()
            nll, tokens = slice_nll(model, data["windows"], batch_size=self.batch_size,
                                    pad_id=self.pad_id)
            seconds = time.perf_counter() - started
            self.seconds += seconds
            row = {"step": state.global_step, "tokens_seen": int(state.num_input_tokens_seen),
                   "language": lang, "bits_per_byte": nll / math.log(2) / data["bytes"],
                   "nll": nll / tokens, "tokens": tokens, "bytes": data["bytes"],
                   "documents": data["documents"], "seconds": round(seconds, 3)}
            self.rows.append(row)
            log.info("recovery at step %d (%d tokens): %s %.4f bits/byte (%.2f s)",
                     row["step"], row["tokens_seen"], lang, row["bits_per_byte"], seconds)
            if self.main:
                with self.path.open("a", newline="") as handle:
                    csv.DictWriter(handle, COLUMNS).writerow(row)
        model.train(was_training)

    def publish(self, out_csv: str | os.PathLike) -> None:
        with atomic_output(out_csv) as tmp:
            write_rows(tmp, self.rows)


def read_rows(path: str | os.PathLike) -> list[dict]:
    """The recovery CSV as typed rows (empty when the file does not exist)."""
    path = Path(path)
    if not path.exists():
        return []
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    ints, floats = {"step", "tokens_seen", "tokens", "bytes", "documents"}, \
        {"bits_per_byte", "nll", "seconds"}
    return [{k: int(v) if k in ints else float(v) if k in floats else v for k, v in r.items()}
            for r in rows]


def write_rows(path: str | os.PathLike, rows: list[dict]) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with Path(path).open("w", newline="") as handle:
        writer = csv.DictWriter(handle, COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
