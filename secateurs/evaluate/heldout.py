"""Evaluate one model: held-out perplexity per language and greedy sample generations.

This module owns the `evaluate` stage. Every model of a run (base, pruned, healed, chat)
goes through the same code with the same settings, so the numbers compare:

- Perplexity is `exp(token-weighted mean NLL)` over whole documents of the held-out split,
  which never entered training (see DESIGN.md). Each document is tokenized on its own
  with the model's tokenizer, without the tokenizer's automatic special tokens, and
  framed the same way for every model: one unscored start token in front (BOS, or EOS
  when the tokenizer has no BOS, because our packed training data separates documents
  with EOS alone) and EOS at the end, which *is* scored, since predicting the end of a
  document is part of modelling it.
- A long document is cut into windows of `seq_len` predictions that overlap by one token,
  so every token after the start token is predicted exactly once (the non-overlapping
  evaluation of the Hugging Face perplexity guide; a token at the start of a later window
  sees only its own window as context).
- Windows are right-padded into batches; padding is masked out of attention and of the
  loss, so the number does not depend on `batch_size`. `use_cache=False` as for every
  forward pass of ours (STACK.md: packed inputs are kept apart only without the cache).
- Alongside perplexity we record the scored-token count, bits per UTF-8 byte and bits per
  character: the summed NLL in nats over ln 2, divided by the bytes (characters) of exactly
  the text whose tokens were scored, i.e. every document's text (the framing tokens carry
  no text of their own). Per-token perplexity does not compare across tokenizers or
  languages (a tokenizer with longer Chinese tokens makes Chinese look easier per token);
  bits per byte does (Gao et al. 2020, The Pile), so the report leads with it.

lm-evaluation-harness tasks (`evaluate.tasks`) run on the same loaded model
(secateurs.evaluate.lmeval) and land in the same JSON under `benchmarks`.

Samples are continuations of plain prompts and answers to chat prompts in the run's chat
format (chat.prompt_format), stopping at its end-of-turn token; greedy by default, sampled
with a seed when `evaluate.temperature` is above 0 (a model card's recommended settings).
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import torch
from tqdm.auto import tqdm

from secateurs import devices
from secateurs.devices import resolve_device
from secateurs.evaluate.lmeval import lm_eval_version, run_tasks
from secateurs.io import read_parquet, write_json

log = logging.getLogger(__name__)



class EvaluationError(ValueError):
    """An input to the evaluate stage is unusable; the message names it and the fix."""


# ----------------------------------------------------------------------------- loading

def resolve_dtype(dtype: str | torch.dtype) -> torch.dtype | str:
    return devices.resolve_dtype(dtype, error=EvaluationError, stage="evaluate")


def load_model(model_dir: str | os.PathLike, *, device: str = "auto", dtype: str = "float32",
               allow_pickle: bool = False, trust_remote_code: bool = False):
    """Load a causal LM and its tokenizer for evaluation (eval mode, on `device`).

    Weights are read with safetensors only unless `allow_pickle` (a pickled `.bin` can run
    code on load); `trust_remote_code` is passed through, default off (DESIGN.md). A
    directory that holds no `config.json` is refused with the fix, since a LoRA adapter
    directory must go through the merge step first.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = Path(model_dir)
    if path.exists() and not (path / "config.json").is_file():
        hint = (" It looks like a PEFT adapter: merge it into its base model first."
                if (path / "adapter_config.json").is_file() else "")
        raise EvaluationError(f"evaluate: model directory {path} has no config.json.{hint}")
    source = str(path) if path.exists() else str(model_dir)  # else: a hub name
    try:
        model = AutoModelForCausalLM.from_pretrained(
            source, dtype=resolve_dtype(dtype), use_safetensors=None if allow_pickle else True,
            trust_remote_code=trust_remote_code)
    except OSError as err:
        if allow_pickle:
            raise
        raise EvaluationError(
            f"evaluate: could not load safetensors weights from {source} ({err}). If the "
            "model only ships pickled .bin weights and you trust it, set base_model.allow_pickle: "
            "true in the config.") from err
    tokenizer = AutoTokenizer.from_pretrained(source, trust_remote_code=trust_remote_code)
    model.to(resolve_device(device)).eval()
    return model, tokenizer


def num_layers(model) -> int:
    """Decoder layer count from the (text) config, which slicing rewrites."""
    config = model.config.get_text_config() if hasattr(model.config, "get_text_config") \
        else model.config
    return int(config.num_hidden_layers)


# ------------------------------------------------------------------------- perplexity

def read_heldout(path: str | os.PathLike, max_docs: int | None = None) -> list[str]:
    """Non-empty `text` values of a held-out Parquet file, first `max_docs` of them."""
    path = Path(path)
    if not path.is_file():
        raise EvaluationError(f"evaluate: held-out file {path} does not exist; run the "
                              "heldout rule or fix the path in the config")
    import pyarrow.parquet as pq

    names = pq.read_schema(path).names
    if "text" not in names:
        raise EvaluationError(f"evaluate: held-out file {path} has no `text` column "
                              f"(columns: {names}); write documents under `text`")
    texts = [row["text"] for row in read_parquet(path, columns=["text"])
             if row["text"] and row["text"].strip()]
    return texts[:max_docs] if max_docs is not None else texts


def frame_tokens(tokenizer) -> tuple[int, int | None]:
    """(start token, end token) that frame every document, as packing framed training data.

    The end token is the document separator of `secateurs.documents` (EOS, or the real
    end-of-text token when EOS is a chat marker such as SmolLM2's `<|im_end|>`); the start
    token is BOS unless it is absent or a chat marker, else the separator.
    """
    from secateurs.documents import FramingError, framing

    try:
        frame = framing(tokenizer)
    except FramingError as err:
        raise EvaluationError(f"evaluate: {err}") from err
    return frame.start, frame.separator


def document_windows(ids: Sequence[int], seq_len: int) -> list[list[int]]:
    """Cut one framed document into windows of at most `seq_len + 1` tokens.

    Consecutive windows share one token (the last input of one is the first of the next)
    so that each token after the first is a label exactly once.
    """
    if seq_len < 1:
        raise EvaluationError(f"evaluate: seq_len must be >= 1, got {seq_len}")
    return [list(ids[i:i + seq_len + 1]) for i in range(0, max(len(ids) - 1, 1), seq_len)
            if len(ids[i:i + seq_len + 1]) >= 2]


def tokenize_documents(texts: Iterable[str], tokenizer, seq_len: int) -> list[list[int]]:
    """Framed, windowed token ids of all documents (windows of every document, in order)."""
    start, end = frame_tokens(tokenizer)
    windows: list[list[int]] = []
    for text in texts:
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        framed = [start, *ids] + ([end] if end is not None else [])
        windows.extend(document_windows(framed, seq_len))
    return windows


@dataclass
class NLL:
    """Running sum of token NLLs (nats) and the number of tokens scored."""
    total: float = 0.0
    tokens: int = 0

    @property
    def mean(self) -> float:
        return self.total / self.tokens if self.tokens else float("nan")


def _batch(windows: list[list[int]], pad_id: int, device: torch.device):
    """Right-pad windows; padding gets attention 0 and label -100 (ignored by the loss)."""
    width = max(len(w) for w in windows)
    ids = torch.full((len(windows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(windows), width), dtype=torch.long)
    for row, window in enumerate(windows):
        ids[row, :len(window)] = torch.tensor(window, dtype=torch.long)
        mask[row, :len(window)] = 1
    return ids.to(device), mask.to(device)


@torch.no_grad()
def windows_nll(model, windows: list[list[int]], *, batch_size: int = 8, pad_id: int = 0,
                desc: str = "nll") -> NLL:
    """Sum of next-token NLLs over all windows, computed in float32.

    Windows are sorted by length so batches carry little padding; the sum does not depend
    on the order. Right padding keeps the default position ids correct for real tokens.
    """
    device = next(model.parameters()).device
    order = sorted(range(len(windows)), key=lambda i: -len(windows[i]))
    result = NLL()
    for first in tqdm(range(0, len(order), batch_size), desc=desc, leave=False,
                      disable=not log.isEnabledFor(logging.INFO)):
        chunk = [windows[i] for i in order[first:first + batch_size]]
        ids, mask = _batch(chunk, pad_id, device)
        logits = model(input_ids=ids, attention_mask=mask, use_cache=False).logits
        labels = ids[:, 1:].masked_fill(mask[:, 1:] == 0, -100)
        loss = torch.nn.functional.cross_entropy(
            logits[:, :-1].float().reshape(-1, logits.shape[-1]), labels.reshape(-1),
            ignore_index=-100, reduction="sum")
        result.total += float(loss)
        result.tokens += int((labels != -100).sum())
    return result


def perplexity(model, tokenizer, texts: Sequence[str], *, seq_len: int,
               batch_size: int = 8, desc: str = "nll") -> dict:
    """{"perplexity", "nll", "tokens", "bytes", "characters", "bits_per_byte",
    "bits_per_char"} of `texts` under `model` (see the module docstring)."""
    windows = tokenize_documents(texts, tokenizer, seq_len)
    if not windows:
        raise EvaluationError("evaluate: no tokens to score (all held-out documents empty)")
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    nll = windows_nll(model, windows, batch_size=batch_size, pad_id=pad_id, desc=desc)
    n_bytes = sum(len(t.encode("utf-8")) for t in texts)
    n_chars = sum(len(t) for t in texts)
    bits = nll.total / math.log(2)
    return {"perplexity": math.exp(nll.mean), "nll": nll.mean, "tokens": nll.tokens,
            "bytes": n_bytes, "characters": n_chars, "bits_per_byte": bits / n_bytes,
            "bits_per_char": bits / n_chars}


# ---------------------------------------------------------------------------- samples

def eos_ids(model, tokenizer) -> list[int]:
    """The generation config's EOS id(s), then the tokenizer's EOS, without duplicates."""
    eos = model.generation_config.eos_token_id
    stops = [] if eos is None else ([eos] if isinstance(eos, int) else list(eos))
    if tokenizer.eos_token_id is not None:
        stops.append(tokenizer.eos_token_id)
    return list(dict.fromkeys(stops))


def chat_stop_ids(model, tokenizer, prompt_format: str = "chatml") -> list[int]:
    """Token ids that end a chat answer: the EOS ids plus the format's end-of-turn token.

    A base or healed model's generation config names only its EOS; the chat format closes
    a turn with its own token (`<|im_end|>`, YaYi's `<|End|>`: secateurs.train.templates),
    added when the tokenizer has it.
    """
    from secateurs.train.templates import prompt_format as format_of

    stops = eos_ids(model, tokenizer)
    end = format_of(prompt_format).end_of_turn
    if end is not None and end in tokenizer.get_vocab():
        stops.append(tokenizer.convert_tokens_to_ids(end))
    return list(dict.fromkeys(stops))


@dataclass(frozen=True)
class Decoding:
    """How sample answers are generated (the `evaluate` settings of the same names).

    temperature 0 is greedy decoding; above 0 samples with that temperature (and `top_p`),
    seeded per prompt so reruns give the same answers. `repetition_penalty` 1.0 is off
    (CTRL's penalty, as transformers applies it). AEZAKMI's card recommends temperature 1.2
    and repetition penalty 1.05, YaYi's README temperature 0.3 and repetition penalty 1.1.
    """

    temperature: float = 0.0
    top_p: float = 1.0
    repetition_penalty: float = 1.0
    seed: int = 0

    def kwargs(self) -> dict:
        sampled = self.temperature > 0
        return {"do_sample": sampled, "num_beams": 1,
                "temperature": self.temperature if sampled else None,
                "top_p": self.top_p if sampled else None, "top_k": None,
                "repetition_penalty": self.repetition_penalty}

    def describe(self) -> str:
        return "greedy" if self.temperature <= 0 else \
            f"sampled (temperature {self.temperature}, top_p {self.top_p}, seed {self.seed})"


@torch.no_grad()
def _generate(model, tokenizer, input_ids: list[int], max_new_tokens: int,
              stops: list[int], decoding: Decoding = Decoding()) -> dict:
    device = next(model.parameters()).device
    ids = torch.tensor([input_ids], dtype=torch.long, device=device)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else (stops or [0])[0]
    torch.manual_seed(decoding.seed)  # each prompt's sample independent of the ones before
    out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids),
                         max_new_tokens=max_new_tokens, eos_token_id=stops or None,
                         pad_token_id=pad, **decoding.kwargs())
    new = out[0, ids.shape[1]:].tolist()
    stopped = "end" if new and new[-1] in stops else "length" if new else "end"
    return {"completion": decode_completion(tokenizer, input_ids, new, whole=stopped == "end"),
            "new_tokens": len(new), "stop": stopped}


REPLACEMENT = "\ufffd"


def decode_completion(tokenizer, prompt_ids: Sequence[int], new_ids: Sequence[int], *,
                      whole: bool = True) -> str:
    """The generated text, decoded with its prompt so no character is split in two.

    Byte-level tokens may carry part of a UTF-8 character: decoded alone, the first new
    token can start mid-character, and a generation cut at max_new_tokens can end
    mid-character; both show as U+FFFD. So the whole sequence is decoded and the prompt's
    text cut off, and an incomplete last character of a cut generation (`whole` False) is
    dropped.
    """
    prefix = tokenizer.decode(list(prompt_ids), skip_special_tokens=True).rstrip(REPLACEMENT)
    full = tokenizer.decode([*prompt_ids, *new_ids], skip_special_tokens=True)
    text = full[len(prefix):] if full.startswith(prefix) else \
        tokenizer.decode(list(new_ids), skip_special_tokens=True)
    return text if whole else text.rstrip(REPLACEMENT)


def generate_samples(model, tokenizer, prompts: Sequence[str] = (),
                     chat_prompts: Sequence[str] = (), *, max_new_tokens: int = 48,
                     prompt_format: str = "chatml", system_prompt: str | None = None,
                     decoding: Decoding = Decoding()) -> list[dict]:
    """Completions of plain prompts framed like held-out documents, then answers to chat
    prompts in the run's chat format (`prompt_format`, with `system_prompt` as the system
    turn when given), for every model alike.

    Prompts run one at a time, so no left padding can shift a short prompt's positions.
    Chat prompts are skipped (with a warning) when the format has no template here (format
    `base` on a tokenizer without one).
    """
    samples = []
    start, _ = frame_tokens(tokenizer)
    plain_stops = eos_ids(model, tokenizer)
    for prompt in prompts:
        ids = [start, *tokenizer(prompt, add_special_tokens=False)["input_ids"]]
        samples.append({"prompt": prompt, "chat": False,
                        **_generate(model, tokenizer, ids, max_new_tokens, plain_stops, decoding)})
    if not chat_prompts:
        return samples
    from secateurs.train.templates import chat_template_for

    template = chat_template_for(tokenizer, prompt_format)
    if template is None:
        log.warning("tokenizer %s has no chat template for prompt format %s; skipping %d chat "
                    "prompts", tokenizer.name_or_path, prompt_format, len(chat_prompts))
        return samples
    stops = chat_stop_ids(model, tokenizer, prompt_format)
    for prompt in chat_prompts:
        ids = chat_prompt_ids(tokenizer, prompt, template=template, system_prompt=system_prompt)
        samples.append({"prompt": prompt, "chat": True,
                        **({"system": system_prompt} if system_prompt else {}),
                        **_generate(model, tokenizer, ids, max_new_tokens, stops, decoding)})
    return samples


def chat_prompt_ids(tokenizer, prompt: str, *, template: str | None = None,
                    system_prompt: str | None = None) -> list[int]:
    """A chat prompt rendered with `template`: the one the chat stage trains with
    (secateurs.train.templates.chat_template_for), the same for every model of a run.

    Without this a base model whose template adds a default system prompt (SmolLM2), or
    that has no template at all (Llama 2 under YaYi's format), would be asked differently
    from the chat model made of it, and their answers would not compare.
    """
    from secateurs.train.templates import chat_template_for

    messages = [{"role": "user", "content": prompt}]
    if system_prompt:
        messages.insert(0, {"role": "system", "content": system_prompt})
    template = template or chat_template_for(tokenizer, "chatml")
    ids = tokenizer.apply_chat_template(messages, chat_template=template,
                                        add_generation_prompt=True, tokenize=True,
                                        return_dict=True)["input_ids"]
    return list(ids)


# ------------------------------------------------------------------------ entry point

def evaluate_model(model_dir: str | os.PathLike, heldout: dict, out_json: str | os.PathLike, *,
                   name: str | None = None, seq_len: int = 1024, batch_size: int = 8,
                   max_docs: int | None = None, prompts: Sequence[str] = (),
                   chat_prompts: Sequence[str] = (), max_new_tokens: int = 64,
                   device: str = "auto", dtype: str = "float32", allow_pickle: bool = False,
                   trust_remote_code: bool = False, seed: int = 0, tasks: Sequence[dict] = (),
                   benchmarks_dir: str | os.PathLike | None = None,
                   allow_download: bool = False, prompt_format: str | None = None,
                   system_prompt: str | None = None, temperature: float = 0.0,
                   top_p: float = 1.0, repetition_penalty: float = 1.0) -> dict:
    """Perplexity and bits per byte per language of `heldout` ({lang: parquet}), samples,
    and the lm-eval `tasks` ({name, num_fewshot, limit}); write `out_json`.

    Chat prompts use `prompt_format` (None: chatml, the chat stage's default; the workflow
    passes chat.prompt_format). Returns the same dict that is written. Deterministic:
    seeded (also when sampling), eval mode.
    """
    decoding = Decoding(temperature=float(temperature), top_p=float(top_p),
                        repetition_penalty=float(repetition_penalty), seed=seed)
    prompt_format = prompt_format or "chatml"
    torch.manual_seed(seed)
    model, tokenizer = load_model(model_dir, device=device, dtype=dtype,
                                  allow_pickle=allow_pickle, trust_remote_code=trust_remote_code)
    name = name or Path(model_dir).name
    result = {"model": name, "model_dir": str(model_dir),
              "num_parameters": int(model.num_parameters()), "num_layers": num_layers(model),
              "perplexity": {}, "nll": {}, "tokens": {}, "documents": {}, "bytes": {},
              "characters": {}, "bits_per_byte": {}, "bits_per_char": {}}
    for lang, path in heldout.items():
        texts = read_heldout(path, max_docs)
        log.info("%s: scoring %d %s documents from %s", name, len(texts), lang, path)
        scores = perplexity(model, tokenizer, texts, seq_len=seq_len, batch_size=batch_size,
                            desc=f"{name} {lang}")
        for key in ("perplexity", "nll", "tokens", "bytes", "characters", "bits_per_byte",
                    "bits_per_char"):
            result[key][lang] = scores[key]
        result["documents"][lang] = len(texts)
        log.info("%s: %s perplexity %.3f over %d tokens, %.4f bits per byte", name, lang,
                 scores["perplexity"], scores["tokens"], scores["bits_per_byte"])
    result["samples"] = generate_samples(model, tokenizer, prompts, chat_prompts,
                                         max_new_tokens=max_new_tokens, prompt_format=prompt_format,
                                         system_prompt=system_prompt, decoding=decoding)
    # Last: lm-eval's wrapper may give the tokenizer a pad token; nothing above sees that.
    result["benchmarks"] = run_tasks(model, tokenizer, tasks, benchmarks_dir=benchmarks_dir,
                                     allow_download=allow_download, batch_size=batch_size,
                                     seed=seed)
    result["settings"] = _settings(heldout, seq_len, batch_size, max_docs, max_new_tokens,
                                   model, dtype, seed, tokenizer)
    result["settings"].update(decoding=decoding.describe(), repetition_penalty=repetition_penalty,
                              prompt_format=prompt_format, system_prompt=system_prompt)
    if tasks:
        result["settings"]["lm_eval"] = lm_eval_version()
        result["settings"]["benchmarks_dir"] = None if benchmarks_dir is None else str(benchmarks_dir)
    write_json(result, out_json)
    return result


def _settings(heldout, seq_len, batch_size, max_docs, max_new_tokens, model, dtype, seed,
              tokenizer) -> dict:
    import transformers

    start, end = frame_tokens(tokenizer)
    return {"heldout": {k: str(v) for k, v in heldout.items()}, "seq_len": seq_len,
            "batch_size": batch_size, "max_docs": max_docs, "max_new_tokens": max_new_tokens,
            "device": str(next(model.parameters()).device), "dtype": str(dtype), "seed": seed,
            "start_token": tokenizer.convert_ids_to_tokens(start),
            "end_token": None if end is None else tokenizer.convert_ids_to_tokens(end),
            "torch": torch.__version__,
            "transformers": transformers.__version__}
