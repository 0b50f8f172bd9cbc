"""What reruns after each kind of change: exactly the dependent jobs, nothing upstream.

Each case layers one more config file over the completed demo run (the `demo_run`
fixture) and asks Snakemake for a dry run. The default rerun triggers (mtime, params,
input, code, software-env) rerun a job whose params or set of input files changed, and
everything downstream of it; the config is split by stage so that the params of a rule
carry only its own slice (DESIGN.md). A job set larger than expected means some rule's
params carry config it does not use; a smaller one means a rule misses a dependency.

The demo builds its own base model from the healing mix (rules/demo.smk), so any change
to the corpus reruns the tokenizer, the base model and everything pruned from it; with a
hub or local base model the same change would stop at mix, tokenize and healing.
"""

from __future__ import annotations

import contextlib

import pytest
import yaml

from workflow import QUICK, planned_jobs, snakemake

pytestmark = pytest.mark.slow

# A change to the corpus in the demo: the Chinese text feeds the tokenizer, the mix, the
# packed data, the base model pretrained on it, and so every later stage.
CORPUS_AND_DOWNSTREAM = {
    "demo_tokenizer": 1, "mix": 1, "tokenize": 1, "demo_base_model": 1, "score_layers": 1,
    "plan_pruning": 1, "slice_model": 1, "heal": 1, "chat_sft": 1, "evaluate": 4,
    "report": 1, "all": 1,
}

CASES = {
    # chat_data reads only chat.data and chat.max_examples
    "chat max_examples": (
        {"chat": {"max_examples": 120}},
        {"chat_data": 1, "chat_sft": 1, "evaluate": 1, "report": 1, "all": 1},
    ),
    # chat_sft reads the rest of chat:; the chat data is not rebuilt
    "chat max_length": (
        {"chat": {"max_length": 200}},
        {"chat_sft": 1, "evaluate": 1, "report": 1, "all": 1},
    ),
    # OpenCC profile: the conversion and everything built on the converted text; the
    # extraction of the dump and the English sample stay
    "opencc profile": (
        {"data": {"sources": {"zhwiki-demo": {"opencc": "tw2sp"}}}},
        {"wiki_convert": 1, **CORPUS_AND_DOWNSTREAM},
    ),
    # pruning strategy: the plan and the models cut by it; the layer scores stay
    "pruning strategy": (
        {"prune": {"plan": {"strategy": "block"}}},
        {"plan_pruning": 1, "slice_model": 1, "heal": 1, "chat_sft": 1, "evaluate": 3,
         "report": 1, "all": 1},
    ),
    # layer scoring settings: scores, plan and everything after them, not the base model
    "scoring samples": (
        {"prune": {"score": {"num_samples": 16}}},
        {"score_layers": 1, "plan_pruning": 1, "slice_model": 1, "heal": 1, "chat_sft": 1,
         "evaluate": 3, "report": 1, "all": 1},
    ),
    # healing learning rate: healing and the chat model fine-tuned from it
    "healing learning rate": (
        {"heal": {"learning_rate": 5.0e-4}},
        {"heal": 1, "chat_sft": 1, "evaluate": 2, "report": 1, "all": 1},
    ),
    # distillation caches the base's top-k once (teacher_logits), but the base itself is not
    # remade
    "distillation switch": (
        {"heal": {"distill": {"enabled": True}}},
        {"teacher_logits": 1, "heal": 1, "chat_sft": 1, "evaluate": 2, "report": 1, "all": 1},
    ),
    # in-process distillation runs the teacher beside the student: no cache to build
    "online distillation switch": (
        {"heal": {"distill": {"enabled": True, "mode": "online"}}},
        {"heal": 1, "chat_sft": 1, "evaluate": 2, "report": 1, "all": 1},
    ),
    # checkpoint and logging cadence do not change a trained model: nothing reruns
    "healing checkpoint cadence": (
        {"heal": {"save_steps": 7, "logging_steps": 3}},
        {},
    ),
    # resources are not params: a job's allocation changes nothing it makes
    "cluster resources": (
        {"resources": {"heal": {"mem_mb": 64000, "runtime": 30}}},
        {},
    ),
    # evaluation settings: every evaluation and the report, no model is retrained
    "evaluation prompts": (
        {"evaluate": {"max_new_tokens": 8}},
        {"evaluate": 4, "report": 1, "all": 1},
    ),
}


def dry_run(work, tmp_path, change: dict) -> dict[str, int]:
    layered = tmp_path / "change.yaml"
    layered.write_text(yaml.safe_dump(change, allow_unicode=True))
    result = snakemake(work, "--dry-run", configfiles=(QUICK, layered))
    return planned_jobs(result.stdout)


@pytest.mark.parametrize("case", CASES)
def test_change_reruns_exactly_its_dependents(demo_run, tmp_path, case):
    change, expected = CASES[case]
    assert dry_run(demo_run, tmp_path, change) == expected


def test_dry_run_names_the_changed_setting_not_the_whole_section(demo_run, tmp_path):
    """The reason a dry run gives for rerunning heal names the one changed setting, before
    and after, and none of heal's thirty others (one param per setting,
    secateurs/workflow/params.py)."""
    layered = tmp_path / "change.yaml"
    layered.write_text(yaml.safe_dump({"heal": {"learning_rate": 5.0e-4}}))
    result = snakemake(demo_run, "--dry-run", configfiles=(QUICK, layered))
    reasons = [line for line in result.stdout.splitlines() if "Params have changed" in line]
    assert len(reasons) == 1, result.stdout[-3000:]
    assert "before: ('training.learning_rate', 0.001)" in reasons[0]
    assert "now: ('training.learning_rate', 0.0005)" in reasons[0]
    assert "adam_beta2" not in reasons[0] and len(reasons[0]) < 300


def test_new_dump_reruns_its_own_extraction_and_what_reads_the_corpus(demo_run, tmp_path):
    """A second dump name (here the same demo file) is a new extract and convert job; the
    existing dump's jobs and the English sample are not redone."""
    from workflow import REPO

    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    dump = config["data"]["sources"]["zhwiki-demo"]
    change = {"data": {"sources": {"zhwiki-demo2": dump}}}
    layered = tmp_path / "change.yaml"
    layered.write_text(yaml.safe_dump(change))
    result = snakemake(demo_run, "--dry-run", configfiles=(QUICK, layered))
    assert planned_jobs(result.stdout) == {"wiki_extract": 1, "wiki_convert": 1,
                                           **CORPUS_AND_DOWNSTREAM}
    assert "results/data/wiki/zhwiki-demo2/articles.parquet" in result.stdout
    assert "results/data/wiki/zhwiki-demo/articles.parquet" not in _outputs_of_jobs(result.stdout)


def _outputs_of_jobs(stdout: str) -> str:
    """The `output:` lines of the planned jobs (inputs name the old dump too)."""
    return "\n".join(line for line in stdout.splitlines() if line.strip().startswith("output:"))


@contextlib.contextmanager
def _appended(path, text):
    """`path` with `text` appended, restored afterwards whatever happens.

    The change has to be in this checkout: a copied checkout resolves the config's paths
    elsewhere, so every rule's params would differ from the finished run's."""
    original = path.read_bytes()
    try:
        path.write_bytes(original + text.encode())
        yield
    finally:
        path.write_bytes(original)


def test_package_code_changes_rerun_the_stages_that_run_it(demo_run, tmp_path):
    """Reruns follow the code that makes an output: a change to the report's logic reruns
    the report alone; a change to the mix's logic reruns the mix and what reads it; a
    comment changes no syntax tree and reruns nothing."""
    from workflow import REPO

    report = REPO / "secateurs" / "evaluate" / "report.py"
    mix = REPO / "secateurs" / "data" / "mix.py"
    with _appended(report, "\n# a comment only\n"):
        assert dry_run(demo_run, tmp_path, {}) == {}
    with _appended(report, "\nREPORT_CHANGED = True\n"):
        assert dry_run(demo_run, tmp_path, {}) == {"report": 1, "all": 1}
    with _appended(mix, "\nMIX_CHANGED = True\n"):
        jobs = dry_run(demo_run, tmp_path, {})
    assert jobs["mix"] == 1 and jobs["tokenize"] == 1 and jobs["heal"] == 1
    assert "wiki_extract" not in jobs and "text_sample" not in jobs
