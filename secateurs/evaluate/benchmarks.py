"""lm-evaluation-harness task definitions that read local files: standard tasks and the demo's.

lm-eval's own tasks download their datasets from the Hugging Face hub. To run offline we
write, per task, a YAML in lm-eval's own format that `include`s the pinned lm-eval's task
file (so `doc_to_text`, `doc_to_choice`, `doc_to_target`, `process_docs`, few-shot split
and metrics are exactly upstream's) and overrides only where the documents come from:
`dataset_path: json` with `dataset_kwargs.data_files` naming JSONL files that a converter
here wrote in the hub dataset's layout. The folder is then given to lm-eval as
`include_path`, whose tasks take precedence over the built-in ones, so the standard names
(`hellaswag`, `arc_easy`, `mmlu_anatomy`, `cmmlu_agronomy`, `ceval-valid_law`, ...) are
shadowed by their local copies, with nothing else changed.

Where the local copy differs from the hub dataset, the task keeps lm-eval's name and the
difference is recorded here and in the README:
- hellaswag: the local file is klosax's preprocessed validation text (all 10,042 items),
  which joins `ctx_a` and `ctx_b` without capitalising `ctx_b` (lm-eval capitalises it);
  the converter puts the joined context in `ctx_a`, so upstream's `process_docs` runs
  unchanged but a few contexts keep a lower-case letter. Scores are close to, not equal
  to, lm-eval's.
- mmlu_<subject>: only the dev and validation splits are copied, so the local task scores
  the validation split (1,531 items in all) where lm-eval scores test.
- boolq: the original BoolQ dev file; `answer` (bool) becomes SuperGLUE's `label` (0/1).

The demo's tasks (`demo_world_en`, `demo_world_zh`) are the project's own: multiple-choice
questions about the demo's fictional world, written by `config/demo/generate/demo_tasks.py`.
"""

from __future__ import annotations

import bz2
import csv
import io
import json
import os
import zipfile
from pathlib import Path
from typing import Iterable

import yaml

from secateurs.evaluate.task_files import (CEVAL_PREFIX, CMMLU_PREFIX, DEMO_TASKS, DOCUMENTED,
                                           MMLU_PREFIX, missing_files, source_files)


class BenchmarkError(ValueError):
    """A benchmark task cannot be set up; the message names the task and the fix."""


def lm_eval_tasks_dir() -> Path:
    """The pinned lm-eval's built-in task folder (its YAMLs are included, never copied)."""
    import lm_eval.tasks

    return Path(lm_eval.tasks.__file__).parent


# -------------------------------------------------------------------------- converters
# Each returns {split: rows in the hub dataset's layout} from {split: source path}.

def hellaswag_rows(path: Path) -> list[dict]:
    """klosax's text: 6 lines per item (`label: context`, gold index, 4 endings)."""
    lines = bz2.decompress(path.read_bytes()).decode("utf-8").splitlines()
    if len(lines) % 6:
        raise BenchmarkError(f"hellaswag: {path} has {len(lines)} lines, not 6 per item; "
                             "expected klosax's hellaswag_val_full.txt.bz2")
    rows = []
    for i in range(0, len(lines), 6):
        activity, _, ctx = lines[i].partition(": ")
        rows.append({"ind": i // 6, "activity_label": activity, "ctx_a": ctx, "ctx_b": "",
                     "endings": lines[i + 2:i + 6], "label": lines[i + 1].strip()})
    return rows


def arc_rows(path: Path) -> list[dict]:
    """ARC's original nested layout -> the hub's flat `question` + `choices{text,label}`."""
    rows = []
    for item in _jsonl(path):
        choices = item["question"]["choices"]
        rows.append({"id": item["id"], "question": item["question"]["stem"],
                     "choices": {"text": [c["text"] for c in choices],
                                 "label": [c["label"] for c in choices]},
                     "answerKey": item["answerKey"]})
    return rows


def piqa_rows(path: Path, labels: Path) -> list[dict]:
    """PIQA's questions and its line-aligned label file -> rows with `label`."""
    items = list(_jsonl(path))
    gold = [int(x) for x in labels.read_text().split()]
    if len(gold) != len(items):
        raise BenchmarkError(f"piqa: {labels} has {len(gold)} labels for {len(items)} items "
                             f"in {path}; they must be line-aligned")
    return [{"goal": d["goal"], "sol1": d["sol1"], "sol2": d["sol2"], "label": g}
            for d, g in zip(items, gold)]


def winogrande_rows(path: Path) -> list[dict]:
    return [{k: d[k] for k in ("sentence", "option1", "option2", "answer")} for d in _jsonl(path)]


def boolq_rows(path: Path) -> list[dict]:
    """Original BoolQ (`answer`: bool) -> SuperGLUE's layout (`label`: 0 no, 1 yes)."""
    return [{"question": d["question"], "passage": d["passage"], "idx": i,
             "label": int(bool(d["answer"]))} for i, d in enumerate(_jsonl(path))]


def mmlu_rows(path: Path, subject: str) -> list[dict]:
    """Headerless hendrycks CSV (question, A-D, letter) -> cais/mmlu's layout."""
    rows = []
    for rec in csv.reader(io.StringIO(path.read_text(encoding="utf-8"))):
        if len(rec) != 6:
            raise BenchmarkError(f"mmlu: {path} has a row of {len(rec)} columns; expected 6 "
                                 "(question, A, B, C, D, answer letter)")
        rows.append({"question": rec[0], "subject": subject, "choices": rec[1:5],
                     "answer": "ABCD".index(rec[5].strip())})
    return rows


def lettered_rows(text: str, keys: Iterable[str]) -> list[dict]:
    """CMMLU / C-Eval CSVs (a header row) -> dicts of the columns lm-eval's template reads."""
    keys = list(keys)
    return [{k: rec[k] for k in keys if k in rec} for rec in csv.DictReader(io.StringIO(text))]


def _jsonl(path: Path):
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                yield json.loads(line)


def _read(root: Path, rel: str) -> str:
    path, _, member = rel.partition("::")
    if member:
        with zipfile.ZipFile(root / path) as archive:
            return archive.read(member).decode("utf-8")
    return (root / path).read_text(encoding="utf-8")


def convert(name: str, root: Path) -> dict[str, list[dict]]:
    """{split: rows} of task `name` from the files under `root` (see secateurs.evaluate.task_files)."""
    src = source_files(name)
    files = {split: root / rel for split, rel in src.items()}
    if name == "hellaswag":
        return {"validation": hellaswag_rows(files["validation"])}
    if name.startswith("arc_"):
        return {split: arc_rows(path) for split, path in files.items()}
    if name == "piqa":
        return {"validation": piqa_rows(files["validation"], files["labels"])}
    if name == "winogrande":
        return {"validation": winogrande_rows(files["validation"])}
    if name == "boolq":
        return {"validation": boolq_rows(files["validation"])}
    if name in DEMO_TASKS:
        return {"test": list(_jsonl(files["test"]))}
    if name.startswith(MMLU_PREFIX):
        subject = name[len(MMLU_PREFIX):]
        return {split: mmlu_rows(path, subject) for split, path in files.items()}
    keys = (("Question", "A", "B", "C", "D", "Answer") if name.startswith(CMMLU_PREFIX)
            else ("id", "question", "A", "B", "C", "D", "answer"))
    return {split: lettered_rows(_read(root, rel), keys) for split, rel in src.items()}


# ------------------------------------------------------------------------ task YAMLs

def upstream_yaml(name: str) -> Path | None:
    """lm-eval's own YAML for a standard task (None for the demo's tasks)."""
    if name in DEMO_TASKS:
        return None
    tasks = lm_eval_tasks_dir()
    fixed = {"hellaswag": "hellaswag/hellaswag.yaml", "arc_easy": "arc/arc_easy.yaml",
             "arc_challenge": "arc/arc_challenge.yaml", "piqa": "piqa/piqa.yaml",
             "winogrande": "winogrande/default.yaml", "boolq": "super_glue/boolq/default.yaml"}
    if name in fixed:
        return tasks / fixed[name]
    for prefix, folder in ((MMLU_PREFIX, "mmlu/default"), (CMMLU_PREFIX, "cmmlu"),
                           (CEVAL_PREFIX, "ceval")):
        if name.startswith(prefix):
            path = tasks / folder / f"{name}.yaml"
            if not path.is_file():
                raise BenchmarkError(f"task {name!r}: lm-eval has no {path.name} in "
                                     f"{path.parent}; check the subject's spelling")
            return path
    return None


def split_overrides(name: str, splits: Iterable[str]) -> dict:
    """Which local split lm-eval evaluates, and which one few-shot examples come from."""
    splits = set(splits)
    out = {"training_split": None}
    if name in DEMO_TASKS or name.startswith(CMMLU_PREFIX):
        out.update(test_split="test", validation_split=None)
    elif name.startswith("arc_"):
        out.update(test_split="test", validation_split="validation")
    elif name.startswith(CEVAL_PREFIX):
        out.update(test_split=None, validation_split="val")
    else:  # hellaswag, piqa, winogrande, boolq, mmlu: the validation split
        out.update(test_split=None, validation_split="validation")
    if "dev" in splits:
        out["fewshot_split"] = "dev"
    return out


def demo_task_config(name: str) -> dict:
    """The demo's own tasks, in the shape of lm-eval's multiple-choice tasks (ARC's prompt)."""
    zh = name.endswith("_zh")
    return {"task": name, "output_type": "multiple_choice",
            "doc_to_text": "问题：{{question}}\n答案：" if zh else "Question: {{question}}\nAnswer:",
            "doc_to_choice": "{{choices}}", "doc_to_target": "answer",
            "target_delimiter": "" if zh else " ",
            "metric_list": [{"metric": "acc", "aggregation": "mean", "higher_is_better": True},
                            {"metric": "acc_norm", "aggregation": "mean",
                             "higher_is_better": True}],
            "metadata": {"version": 1.0, "source": "config/demo/generate/demo_tasks.py"}}


def write_task(name: str, benchmarks_dir: str | os.PathLike, out_dir: str | os.PathLike) -> Path:
    """Convert task `name`'s local files into `out_dir/data/` and write `out_dir/<name>.yaml`."""
    if source_files(name) is None:
        raise BenchmarkError(f"task {name!r} has no local definition; local tasks: {DOCUMENTED}")
    missing = missing_files(name, benchmarks_dir)
    if missing:
        raise BenchmarkError(f"task {name!r} needs {', '.join(missing)} under {benchmarks_dir}; "
                             "copy them there (layout of ../shared/real-data/benchmarks)")
    out = Path(out_dir)
    data_dir = out / "data" / name
    data_dir.mkdir(parents=True, exist_ok=True)
    data_files = {}
    for split, rows in convert(name, Path(benchmarks_dir)).items():
        path = data_dir / f"{split}.jsonl"
        with open(path, "w", encoding="utf-8") as handle:
            handle.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
        data_files[split] = str(path.resolve())
    upstream = upstream_yaml(name)
    config = {"include": str(upstream)} if upstream else demo_task_config(name)
    config.update({"task": name, "dataset_path": "json", "dataset_name": None,
                   "dataset_kwargs": {"data_files": data_files,
                                      "cache_dir": str((out / "cache").resolve())},
                   **split_overrides(name, data_files)})
    path = out / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def write_tasks(names: Iterable[str], benchmarks_dir, out_dir) -> list[Path]:
    """`write_task` for each name; the folder is then an lm-eval `include_path`."""
    return [write_task(name, benchmarks_dir, out_dir) for name in dict.fromkeys(names)]
