"""Batched fast tokenization on a fixed number of cores, shared by `mix` and `packing`.

Both stages count or write tokens of the *base model's* tokenizer (DESIGN.md: mixing ratios
are by tokens, not rows), so both go through this one module.

Why processes and not the tokenizer's own threads: the Rust `tokenizers` library
parallelises `encode_batch` with a rayon pool sized once per process from the machine's
core count (or RAYON_NUM_THREADS read at first use), so it cannot honour the `threads:` a
Snakemake rule or a SLURM job was given. With `threads == 1` we encode in-process with
rayon switched off (`TOKENIZERS_PARALLELISM=false`, which the library re-reads on every
call); with `threads > 1` we run that many single-threaded worker processes over batches,
with a bounded number of batches in flight so memory stays flat, and collect results in
input order so the output does not depend on `threads`.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
from collections import deque
from concurrent.futures import ProcessPoolExecutor
from itertools import chain
from typing import Iterable, Iterator, Sequence

import numpy as np


_PARALLELISM_ENV = "TOKENIZERS_PARALLELISM"
_worker_tokenizer = None  # the backend tokenizer of a worker process (set by _init_worker)


def load_tokenizer(tokenizer_dir):
    """Load a Hugging Face *fast* tokenizer from a directory or hub name.

    Slow (Python) tokenizers are refused: they are one to two orders of magnitude slower
    and have no batched Rust backend for the workers to share.
    """
    from transformers import AutoTokenizer  # imported here: worker processes never need it

    tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_dir))
    if not getattr(tokenizer, "is_fast", False):
        raise ValueError(
            f"{tokenizer_dir}: tokenizer is not a fast (Rust) tokenizer; save it with a "
            "tokenizer.json (e.g. AutoTokenizer.from_pretrained(..., use_fast=True)."
            "save_pretrained(dir)) and pass that directory")
    return tokenizer


@contextlib.contextmanager
def _rayon_off() -> Iterator[None]:
    """Switch the tokenizers library's internal thread pool off for the duration of a block."""
    old = os.environ.get(_PARALLELISM_ENV)
    os.environ[_PARALLELISM_ENV] = "false"
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(_PARALLELISM_ENV, None)
        else:
            os.environ[_PARALLELISM_ENV] = old


def _encode(backend, texts: Sequence[str], add_special_tokens: bool,
            lengths_only: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Encode a batch; return (all ids concatenated as int32, per-text lengths as int64).

    `encode_batch_fast` skips offset tracking, which we never use. With `lengths_only` the
    ids are not materialised (an empty array is returned in their place).
    """
    encodings = backend.encode_batch_fast(list(texts), add_special_tokens=add_special_tokens)
    if lengths_only:
        lengths = np.fromiter((len(e) for e in encodings), dtype=np.int64, count=len(encodings))
        return np.zeros(0, dtype=np.int32), lengths
    ids = [e.ids for e in encodings]
    lengths = np.fromiter((len(x) for x in ids), dtype=np.int64, count=len(ids))
    flat = np.fromiter(chain.from_iterable(ids), dtype=np.int32, count=int(lengths.sum()))
    return flat, lengths


def _init_worker(tokenizer_json: str) -> None:
    os.environ[_PARALLELISM_ENV] = "false"
    from tokenizers import Tokenizer

    global _worker_tokenizer
    _worker_tokenizer = Tokenizer.from_str(tokenizer_json)


def _encode_in_worker(args: tuple[list[str], bool, bool]) -> tuple[np.ndarray, np.ndarray]:
    return _encode(_worker_tokenizer, *args)


def encode_batches(batches: Iterable[Sequence[str]], tokenizer, *, threads: int = 1,
                   add_special_tokens: bool = False,
                   lengths_only: bool = False) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield (flat int32 ids, int64 lengths) for each batch of texts, in input order.

    `tokenizer` is a loaded fast tokenizer (see `load_tokenizer`). Results are identical
    for every `threads`; only the wall time changes. `lengths_only` skips building (and,
    from workers, sending back) the ids.
    """
    if threads < 1:
        raise ValueError(f"threads must be >= 1, got {threads}")
    backend = tokenizer.backend_tokenizer
    if threads == 1:
        with _rayon_off():
            for batch in batches:
                yield _encode(backend, batch, add_special_tokens, lengths_only)
        return
    # spawn, not fork: the parent may already run torch/rayon threads, and forking a
    # multi-threaded process can deadlock; workers import only numpy and tokenizers. An
    # executor, not multiprocessing.Pool: a worker that dies (one that cannot even import
    # its __main__) fails the run with BrokenProcessPool, where a Pool respawns it forever.
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(threads, mp_context=context, initializer=_init_worker,
                             initargs=(backend.to_str(),)) as pool:
        pending: deque = deque()
        for batch in batches:
            task = (list(batch), add_special_tokens, lengths_only)
            pending.append(pool.submit(_encode_in_worker, task))
            if len(pending) >= 2 * threads:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def count_tokens(texts: Sequence[str], tokenizer, *, threads: int = 1,
                 batch_size: int = 1000) -> np.ndarray:
    """Number of tokens of each text (no special tokens added), as an int64 array."""
    batches = (texts[i:i + batch_size] for i in range(0, len(texts), batch_size))
    lengths = [n for _, n in encode_batches(batches, tokenizer, threads=threads,
                                            lengths_only=True)]
    return np.concatenate(lengths) if lengths else np.zeros(0, dtype=np.int64)
