"""Tests for secateurs.evaluate.benchmarks: local task YAMLs that lm-eval loads offline.

Each local task must (1) keep lm-eval's own prompt, choices and target (the YAML includes
the pinned upstream file and overrides only the data), (2) hold every item of the copied
split, and (3) render the first item as upstream's template does on the raw file's row,
computed here independently from the raw file.
"""

from __future__ import annotations

import bz2
import csv
import json

import pytest

from secateurs.evaluate.task_files import missing_files, source_files
from secateurs.evaluate.benchmarks import (BenchmarkError, lm_eval_tasks_dir, upstream_yaml,
                                           write_task, write_tasks)
from secateurs.evaluate.lmeval import go_offline
from workflow import REPO

DEMO = REPO / "config" / "demo"
TEMPLATE_KEYS = ("doc_to_text", "doc_to_choice", "doc_to_target", "process_docs",
                 "metric_list", "output_type", "description", "fewshot_config")


def load_tasks(task_dir, names):
    """The tasks as lm-eval builds them from `task_dir` alone (no built-in tasks, offline)."""
    from lm_eval.tasks import TaskManager

    go_offline()
    manager = TaskManager(include_path=str(task_dir), include_defaults=False)
    return manager.load(list(names))["tasks"]


def test_demo_tasks_load_offline(tmp_path):
    write_tasks(["demo_world_en", "demo_world_zh"], DEMO, tmp_path)
    tasks = load_tasks(tmp_path, ["demo_world_en", "demo_world_zh"])
    rows = {lang: [json.loads(l) for l in (DEMO / f"demo-world-{lang}.jsonl").open(encoding="utf-8")]
            for lang in ("en", "zh")}
    en, zh = list(tasks["demo_world_en"].eval_docs), list(tasks["demo_world_zh"].eval_docs)
    assert len(en) == len(rows["en"]) == len(zh) == 200
    task = tasks["demo_world_en"]
    assert task.doc_to_text(en[0]) == f"Question: {rows['en'][0]['question']}\nAnswer:"
    assert task.doc_to_choice(en[0]) == rows["en"][0]["choices"]
    assert task.doc_to_target(en[0]) == rows["en"][0]["answer"]
    assert tasks["demo_world_zh"].doc_to_text(zh[0]) == f"问题：{rows['zh'][0]['question']}\n答案："


def test_unknown_and_unavailable_tasks_are_refused(tmp_path):
    with pytest.raises(BenchmarkError, match="xnli_es.*no local definition"):
        write_task("xnli_es", DEMO, tmp_path)
    with pytest.raises(BenchmarkError, match="hellaswag.*hellaswag_val_full"):
        write_task("hellaswag", DEMO, tmp_path)
    assert missing_files("demo_world_en", DEMO) == []
    assert missing_files("demo_world_en", None) == ["demo-world-en.jsonl"]
    assert source_files("mmlu_") is None and source_files("gsm8k") is None


# ------------------------------------------------------------------ real benchmark files

STANDARD = ["hellaswag", "arc_easy", "arc_challenge", "piqa", "winogrande", "boolq",
            "mmlu_anatomy", "cmmlu_agronomy", "ceval-valid_law"]


@pytest.fixture(scope="module")
def benchmarks(real_data):
    folder = real_data / "benchmarks"
    if not folder.is_dir():
        pytest.skip("../shared/real-data/benchmarks is absent")
    return folder


@pytest.fixture(scope="module")
def standard_tasks(benchmarks, tmp_path_factory):
    out = tmp_path_factory.mktemp("tasks")
    write_tasks(STANDARD, benchmarks, out)
    return out, load_tasks(out, STANDARD)


def manifest_rows(benchmarks, path: str) -> int:
    with open(benchmarks / "MANIFEST.tsv", encoding="utf-8") as handle:
        for row in csv.DictReader(handle, delimiter="\t"):
            if row["file"] == path:
                return int(row["rows"])
    raise KeyError(path)


@pytest.mark.realdata
def test_local_yaml_keeps_lm_evals_template(standard_tasks):
    """Prompt, choices, target, metrics: upstream's values, only the data source differs."""
    from lm_eval.tasks._yaml_loader import load_yaml

    out, _ = standard_tasks
    for name in STANDARD:
        ours = load_yaml(out / f"{name}.yaml", resolve_func=False)
        upstream = load_yaml(upstream_yaml(name), resolve_func=False)
        assert upstream_yaml(name).is_relative_to(lm_eval_tasks_dir())
        for key in TEMPLATE_KEYS:
            assert str(ours.get(key)) == str(upstream.get(key)), (name, key)
        assert ours["dataset_path"] == "json" and ours["task"] == name


@pytest.mark.realdata
def test_every_item_of_the_copied_split_is_loaded(standard_tasks, benchmarks):
    _, tasks = standard_tasks
    expected = {"hellaswag": 10_042, "arc_easy": 2_376, "arc_challenge": 1_172, "piqa": 1_838,
                "winogrande": 1_267, "boolq": 3_270,
                "mmlu_anatomy": manifest_rows(benchmarks, "raybears+cot-transparency/mmlu/val/anatomy_val.csv"),
                "cmmlu_agronomy": manifest_rows(benchmarks, "haonan-li+CMMLU/test/agronomy.csv"),
                "ceval-valid_law": manifest_rows(
                    benchmarks, "hiyouga+LLaMA-Factory/ceval-members/val/law_val.csv")}
    assert {n: len(list(tasks[n].eval_docs)) for n in STANDARD} == expected
    for name in ("mmlu_anatomy", "cmmlu_agronomy", "ceval-valid_law"):
        assert len(list(tasks[name].fewshot_docs())) == 5  # the dev split, for few-shot


@pytest.mark.realdata
def test_first_items_render_like_upstream(standard_tasks, benchmarks):
    """The first item of each task, built by hand from the raw file with lm-eval's template."""
    _, tasks = standard_tasks

    def first(name):
        task = tasks[name]
        doc = list(task.eval_docs)[0]
        return task.doc_to_text(doc), task.doc_to_choice(doc), task.doc_to_target(doc)

    lines = bz2.decompress((benchmarks / source_files("hellaswag")["validation"]).read_bytes()
                           ).decode().splitlines()
    assert first("hellaswag") == (lines[0].strip(), [e.strip() for e in lines[2:6]], int(lines[1]))

    arc = json.loads((benchmarks / source_files("arc_easy")["test"]).open().readline())
    labels = [c["label"] for c in arc["question"]["choices"]]
    assert first("arc_easy") == (f"Question: {arc['question']['stem']}\nAnswer:",
                                 [c["text"] for c in arc["question"]["choices"]],
                                 labels.index(arc["answerKey"]))

    piqa = json.loads((benchmarks / source_files("piqa")["validation"]).open().readline())
    label = int((benchmarks / source_files("piqa")["labels"]).read_text().split()[0])
    assert first("piqa") == (f"Question: {piqa['goal']}\nAnswer:", [piqa["sol1"], piqa["sol2"]],
                             label)

    wino = json.loads((benchmarks / source_files("winogrande")["validation"]).open().readline())
    cut = wino["sentence"].index("_")
    assert first("winogrande") == ({"1": 0, "2": 1}[wino["answer"]],
                                   [wino["sentence"][:cut] + wino["option1"],
                                    wino["sentence"][:cut] + wino["option2"]],
                                   wino["sentence"][cut + 1:].strip())

    boolq = json.loads((benchmarks / source_files("boolq")["validation"]).open().readline())
    assert first("boolq") == (f"{boolq['passage']}\nQuestion: {boolq['question']}?\nAnswer:",
                              ["no", "yes"], int(boolq["answer"]))

    row = next(csv.reader((benchmarks / source_files("mmlu_anatomy")["validation"]).open()))
    assert first("mmlu_anatomy") == (
        f"{row[0].strip()}\nA. {row[1]}\nB. {row[2]}\nC. {row[3]}\nD. {row[4]}\nAnswer:",
        ["A", "B", "C", "D"], "ABCD".index(row[5]))

    row = next(csv.DictReader((benchmarks / source_files("cmmlu_agronomy")["test"]).open()))
    assert first("cmmlu_agronomy") == (
        f"{row['Question'].strip()}\nA. {row['A']}\nB. {row['B']}\nC. {row['C']}\nD. {row['D']}\n答案：",
        ["A", "B", "C", "D"], "ABCD".index(row["Answer"]))
    assert tasks["cmmlu_agronomy"].config.description.startswith("以下是关于农学的单项选择题")

    row = next(csv.DictReader((benchmarks / "hiyouga+LLaMA-Factory/ceval-members/val/law_val.csv"
                               ).open(encoding="utf-8")))
    assert first("ceval-valid_law")[0].startswith(row["question"].strip() + "\nA. " + row["A"])
    assert first("ceval-valid_law")[2] == "ABCD".index(row["answer"])
