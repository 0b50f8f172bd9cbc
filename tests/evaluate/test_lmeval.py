"""lm-evaluation-harness through secateurs: evaluate_model -> eval JSON -> report table.

Real lm-eval, real tiny models, local task files; nothing is mocked and nothing touches
the network (the tasks are written into a temporary include_path and run offline).
"""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from secateurs.evaluate.heldout import evaluate_model
from secateurs.evaluate.lmeval import items_scored, task_metrics
from secateurs.evaluate.report import write_report
from workflow import REPO

DEMO_TASKS = [{"name": "demo_world_en", "num_fewshot": 0, "limit": 40},
              {"name": "demo_world_zh", "num_fewshot": 1, "limit": 30}]


@pytest.fixture(scope="module")
def pruned_dir(tiny_llama_dir, tmp_path_factory):
    """The tiny Llama with three of its six layers deleted, saved like a sliced model."""
    model = AutoModelForCausalLM.from_pretrained(tiny_llama_dir)
    model.model.layers = torch.nn.ModuleList([model.model.layers[i] for i in (0, 1, 5)])
    model.config.num_hidden_layers = 3
    out = tmp_path_factory.mktemp("pruned") / "model"
    model.save_pretrained(out)
    AutoTokenizer.from_pretrained(tiny_llama_dir).save_pretrained(out)
    return out


def _stderr(p: float, n: int) -> float:
    """lm-eval's standard error of a mean of 0/1 scores (sample deviation, n - 1)."""
    return math.sqrt(p * (1 - p) / (n - 1))


def test_task_metrics_reads_lm_evals_keys():
    raw = {"t": {"alias": "t", "acc,none": 0.5, "acc_stderr,none": 0.1, "acc_norm,none": 0.25,
                 "acc_norm_stderr,none": "N/A"}}
    assert task_metrics(raw, "t", 8) == {"n": 8, "acc": 0.5, "acc_stderr": 0.1,
                                         "acc_norm": 0.25, "acc_norm_stderr": None}
    with pytest.raises(ValueError, match="neither acc nor acc_norm"):
        task_metrics({"g": {"exact_match,none": 1.0}}, "g", 3)
    assert items_scored({"a": {"effective": 3}, "b": {"effective": 4}}, "group") == 7


@pytest.mark.slow
def test_demo_tasks_give_the_benchmark_table(tiny_llama_dir, pruned_dir, tmp_path):
    """Base and pruned through lm-eval on the demo's tasks, then the report's table."""
    paths = {}
    for name, model in (("base", tiny_llama_dir), ("pruned", pruned_dir)):
        paths[name] = tmp_path / f"{name}.json"
        evaluate_model(model, {}, paths[name], name=name, device="cpu", tasks=DEMO_TASKS,
                       benchmarks_dir=REPO / "config" / "demo", batch_size=16)
    results = {n: json.loads(p.read_text(encoding="utf-8")) for n, p in paths.items()}
    for name, result in results.items():
        scores = result["benchmarks"]
        assert list(scores) == ["demo_world_en", "demo_world_zh"]
        assert scores["demo_world_en"]["n"] == 40 and scores["demo_world_zh"]["n"] == 30
        assert scores["demo_world_zh"]["num_fewshot"] == 1
        for task, s in scores.items():
            for metric in ("acc", "acc_norm"):
                assert 0 <= s[metric] <= 1
                assert s[f"{metric}_stderr"] == pytest.approx(_stderr(s[metric], s["n"]))
        assert result["settings"]["lm_eval"] == "0.4.13"
    # Three layers fewer change the model's choices somewhere (the layers are really gone).
    assert any(results["base"]["benchmarks"][t] != results["pruned"]["benchmarks"][t]
               for t in ("demo_world_en", "demo_world_zh"))
    out = tmp_path / "report"
    write_report(paths, out)
    md = (out / "summary.md").read_text(encoding="utf-8")
    base = results["base"]["benchmarks"]["demo_world_en"]
    assert f"| demo_world_en | base | 40 | 0 | {base['acc']:.1%} ± {base['acc_stderr']:.1%} |" in md
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    pruned = next(b for b in summary["benchmarks"]
                  if b["task"] == "demo_world_en" and b["model"] == "pruned")
    expected = results["pruned"]["benchmarks"]["demo_world_en"]["acc"] / base["acc"]
    assert pruned["kept"]["acc"] == pytest.approx(expected)


@pytest.mark.slow
@pytest.mark.realdata
def test_real_benchmarks_through_evaluate(real_data, tiny_llama_dir, tmp_path):
    """Standard task names served from the real files, few-shot from their dev split."""
    tasks = [{"name": n, "num_fewshot": k, "limit": 8} for n, k in (
        ("hellaswag", 0), ("arc_challenge", 0), ("winogrande", 0), ("boolq", 0),
        ("mmlu_anatomy", 5), ("cmmlu_agronomy", 5), ("ceval-valid_law", 5))]
    result = evaluate_model(tiny_llama_dir, {}, tmp_path / "base.json", name="base",
                            device="cpu", tasks=tasks, benchmarks_dir=real_data / "benchmarks")
    assert [t["name"] for t in tasks] == list(result["benchmarks"])
    for task in tasks:
        score = result["benchmarks"][task["name"]]
        assert score["n"] == 8 and 0 <= score["acc"] <= 1
    assert "acc_norm" not in result["benchmarks"]["winogrande"]  # upstream defines acc only
    assert "acc_norm" in result["benchmarks"]["hellaswag"]
    table = write_report({"base": tmp_path / "base.json"}, tmp_path / "report")
    md = (tmp_path / "report" / "summary.md").read_text(encoding="utf-8")
    for task in tasks:
        assert f"| {task['name']} | base | 8 | {task['num_fewshot']} |" in md
    assert table.splitlines()[0].startswith("| model |")


@pytest.mark.slow
def test_cli_runs_lm_eval_tasks_by_hand(tiny_llama_dir, tmp_path):
    out = tmp_path / "by-hand.json"
    result = subprocess.run(
        [sys.executable, "-m", "secateurs", "evaluate", str(tiny_llama_dir), str(out),
         "--task", "demo_world_en:0:12", "--task", "demo_world_zh::10",
         "--benchmarks-dir", str(REPO / "config" / "demo"), "--device", "cpu"],
        capture_output=True, text=True, cwd=REPO, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    scores = json.loads(out.read_text(encoding="utf-8"))["benchmarks"]
    assert scores["demo_world_en"]["n"] == 12 and scores["demo_world_zh"]["n"] == 10
    refused = subprocess.run(
        [sys.executable, "-m", "secateurs", "evaluate", str(tiny_llama_dir), str(out),
         "--task", "hellaswag", "--benchmarks-dir", str(tmp_path), "--device", "cpu"],
        capture_output=True, text=True, cwd=REPO, timeout=600)
    assert refused.returncode == 2 and "hellaswag_val_full.txt.bz2" in refused.stderr
