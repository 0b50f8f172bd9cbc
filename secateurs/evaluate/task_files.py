"""Which local files each offline benchmark task reads: a table, no lm-eval import.

The `evaluate` stage runs lm-evaluation-harness tasks from local copies (no network at run
time). This module only says, for a task name, which files under `evaluate.benchmarks_dir`
it needs, so the stage's configuration check (`secateurs.evaluate.checks`) can refuse a
task that cannot run before any job starts, and `secateurs.evaluate.benchmarks` (which
converts those files and writes the task YAMLs) reads the same table. It imports
nothing heavy: the config check runs at every Snakemake start.

The layout is that of `../shared/real-data/benchmarks/` (see its README.md): each file
under the `owner+repository` folder it was copied from. The demo's own tasks live in
`config/demo/` (written by `config/demo/generate/demo_corpus.py`).
"""

from __future__ import annotations

from pathlib import Path

HELLASWAG = "klosax+hellaswag_text_data/hellaswag_val_full.txt.bz2"
ARC = {"arc_easy": ("RazvanDu+TemporalRNNs", "ARC-Easy"),
       "arc_challenge": ("wjn1996+Chain-of-Knowledge", "ARC-Challenge")}
PIQA = ("ybisk+ybisk.github.io/valid.jsonl", "ybisk+ybisk.github.io/valid-labels.lst")
WINOGRANDE = "zhang-edward+WinoGrande/dev.jsonl"
BOOLQ = "d-eremeev+BoolQ-Question-Answering/dev.jsonl"
MMLU = "raybears+cot-transparency/mmlu"
CMMLU = "haonan-li+CMMLU"
CEVAL_ZIP = "hiyouga+LLaMA-Factory/ceval.zip"
DEMO_TASKS = {"demo_world_en": "demo-world-en.jsonl", "demo_world_zh": "demo-world-zh.jsonl"}

# Prefixes of the per-subject families, as lm-eval names them.
MMLU_PREFIX, CMMLU_PREFIX, CEVAL_PREFIX = "mmlu_", "cmmlu_", "ceval-valid_"

DOCUMENTED = ("hellaswag, arc_easy, arc_challenge, piqa, winogrande, boolq, "
              "mmlu_<subject>, cmmlu_<subject>, ceval-valid_<subject>, "
              "demo_world_en, demo_world_zh")


def source_files(name: str) -> dict[str, str] | None:
    """{split: path relative to benchmarks_dir} that task `name` reads; None if not local.

    A C-Eval split is a member of the zip (`ceval.zip::val/<subject>_val.csv`).
    """
    if name == "hellaswag":
        return {"validation": HELLASWAG}
    if name in ARC:
        folder, stem = ARC[name]
        return {"test": f"{folder}/{stem}-Test.jsonl", "validation": f"{folder}/{stem}-Dev.jsonl"}
    if name == "piqa":
        return {"validation": PIQA[0], "labels": PIQA[1]}
    if name == "winogrande":
        return {"validation": WINOGRANDE}
    if name == "boolq":
        return {"validation": BOOLQ}
    if name in DEMO_TASKS:
        return {"test": DEMO_TASKS[name]}
    if name.startswith(MMLU_PREFIX) and name != MMLU_PREFIX:
        subject = name[len(MMLU_PREFIX):]
        return {"validation": f"{MMLU}/val/{subject}_val.csv", "dev": f"{MMLU}/dev/{subject}_dev.csv"}
    if name.startswith(CMMLU_PREFIX) and name != CMMLU_PREFIX:
        subject = name[len(CMMLU_PREFIX):]
        return {"test": f"{CMMLU}/test/{subject}.csv", "dev": f"{CMMLU}/dev/{subject}.csv"}
    if name.startswith(CEVAL_PREFIX) and name != CEVAL_PREFIX:
        subject = name[len(CEVAL_PREFIX):]
        return {"val": f"{CEVAL_ZIP}::val/{subject}_val.csv",
                "dev": f"{CEVAL_ZIP}::dev/{subject}_dev.csv"}
    return None


def missing_files(name: str, benchmarks_dir: str | Path | None) -> list[str]:
    """The files (relative paths) task `name` needs that are not under `benchmarks_dir`."""
    needed = source_files(name) or {}
    if benchmarks_dir is None:
        return sorted(set(needed.values()))
    root = Path(benchmarks_dir)
    missing = []
    for rel in needed.values():
        path, _, member = rel.partition("::")
        if not (root / path).is_file():
            missing.append(rel)
        elif member and not _zip_has(root / path, member):
            missing.append(rel)
    return sorted(set(missing))


def _zip_has(path: Path, member: str) -> bool:
    import zipfile

    with zipfile.ZipFile(path) as archive:
        return member in archive.namelist()
