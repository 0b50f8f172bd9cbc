"""Tests for secateurs.evaluate.report: files written, one table row per model, optional inputs."""

from __future__ import annotations

import csv
import json
import math

import pytest

from secateurs.io import write_json
from secateurs.evaluate.report import ReportError, human_count, write_report

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _metrics(name, layers, params, en, zh, samples=(), benchmarks=None):
    """An evaluate JSON; bits per byte is log2(ppl) x 0.25 tokens per byte (en), 0.5 (zh)."""
    return {"model": name, "model_dir": f"/models/{name}", "num_parameters": params,
            "num_layers": layers, "perplexity": {"en": en, "zh": zh},
            "bits_per_byte": {"en": 0.25 * math.log2(en), "zh": 0.5 * math.log2(zh)},
            "nll": {}, "tokens": {"en": 100, "zh": 50},
            "samples": [{"prompt": p, "completion": c, "chat": chat} for p, c, chat in samples],
            "benchmarks": benchmarks or {}, "settings": {}}


def _scores(acc, acc_norm=None, n=100):
    out = {"n": n, "num_fewshot": 0, "limit": n, "acc": acc, "acc_stderr": 0.04}
    if acc_norm is not None:
        out.update(acc_norm=acc_norm, acc_norm_stderr=0.05)
    return out


@pytest.fixture
def run(tmp_path):
    """Four evaluate outputs in pipeline order, a plan, a heatmap and two training logs."""
    models = {
        "base": _metrics("base", 32, 6_061_035_520, 8.0, 12.0,
                         [("Once upon", "a time | there", False), ("Hi?", "Hello\nthere", True)],
                         {"hellaswag": _scores(0.40, 0.50), "winogrande": _scores(0.60)}),
        "pruned": _metrics("pruned", 18, 3_442_000_000, 40.0, 90.0,
                           [("Once upon", "the the", False)],
                           {"hellaswag": _scores(0.30, 0.40), "winogrande": _scores(0.54)}),
        "healed": _metrics("healed", 18, 3_442_000_000, 11.0, 16.0),
        "chat": _metrics("chat", 18, 3_442_000_000, 12.0, 17.5,
                         [("Hi?", "Hello! How can I help?", True)]),
    }
    paths = {}
    for name, data in models.items():
        paths[name] = tmp_path / f"{name}.json"
        write_json(data, paths[name])
    plan = tmp_path / "plan.json"
    write_json({"strategy": "block_influence", "keep": [*range(16), 30, 31],
                "remove": list(range(16, 30)), "slices": [[0, 16], [30, 32]],
                "num_layers_before": 32,
                "num_layers_after": 18, "params_before": 6_061_035_520,
                "params_after": 3_442_000_000}, plan)
    heatmap = tmp_path / "scores.png"
    heatmap.write_bytes(PNG_MAGIC + b"fake image body")
    logs = {}
    for stage in ("heal", "chat"):
        logs[stage] = tmp_path / f"{stage}.csv"
        with open(logs[stage], "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["step", "tokens_seen", "loss", "learning_rate",
                             "tokens_per_second"])
            steps = 10 if stage == "heal" else 60  # the chat log is long enough to smooth
            for step in range(1, steps + 1):
                writer.writerow([step, step * 4096, 5.0 / step, 1e-4 * min(1, step / 5),
                                 2000.0])
            writer.writerow([steps, steps * 4096, "", "", ""])  # an eval-only row: no loss
    return {"metrics": paths, "plan": plan, "heatmap": heatmap, "logs": logs}


def test_full_report(run, tmp_path):
    out = tmp_path / "report"
    table = write_report(run["metrics"], out, plan_json=run["plan"],
                         scores_png=run["heatmap"], train_logs=run["logs"])
    lines = table.splitlines()
    assert lines[0].startswith("| model | layers | parameters | bits/byte en | bits/byte zh "
                               "| ppl en | ppl zh |")
    assert [line.split("|")[1].strip() for line in lines[2:]] == [
        "base", "pruned", "healed", "chat"]
    # bits/byte: 0.25 log2(40) = 1.330 (base 0.750: +77.4%); 0.5 log2(90) = 3.246 (base 1.792)
    assert ("| pruned | 18 | 3.44B | 1.330 | 3.246 | 40.00 | 90.00 | en +77.4%, zh +81.1% |"
            in table)
    for name in ("summary.md", "summary.json", "perplexity.png",
                 "params_vs_perplexity.png", "loss.png", "layer_scores.png"):
        assert (out / name).is_file(), name
    for name in ("perplexity.png", "params_vs_perplexity.png", "loss.png"):
        assert (out / name).read_bytes()[:8] == PNG_MAGIC
    assert (out / "layer_scores.png").read_bytes() == run["heatmap"].read_bytes()
    md = (out / "summary.md").read_text(encoding="utf-8")
    assert table in md
    assert "- removed: 16, 17, 18" in md and "(43.2% fewer)" in md
    assert "- kept slices: [0, 16) + [30, 32)" in md
    # no run summary: steps and tokens of the last logged row, the loss over the logged steps
    assert "| heal | 10 | 40,960 | 1.464 | 5.000 | 0.500 | 2k |" in md
    assert "a time \\| there" in md and "Hello ⏎ there" in md  # escaped, one line
    assert md.index("- **base**: Hello") < md.index("- **chat**: Hello!")
    assert "## Benchmarks (lm-evaluation-harness)" in md
    assert "| hellaswag | pruned | 100 | 0 | 30.0% ± 4.0% | 40.0% ± 5.0% | 75.0% / 80.0% |" in md
    assert "| winogrande | pruned | 100 | 0 | 54.0% ± 4.0% | - | 90.0% |" in md
    assert md.index("## Benchmarks") < md.index("## Parameters vs perplexity")
    summary = json.loads((out / "summary.json").read_text())
    kept = {(b["task"], b["model"]): b["kept"] for b in summary["benchmarks"]}
    assert kept[("hellaswag", "base")] == {"acc": 1.0, "acc_norm": 1.0}
    assert kept[("winogrande", "pruned")]["acc"] == pytest.approx(0.9)
    assert ("hellaswag", "healed") not in kept  # a model without the task gets no row
    assert [m["model"] for m in summary["models"]] == ["base", "pruned", "healed", "chat"]
    assert summary["models"][2]["change_vs_base"]["en"] == pytest.approx(11 / 8 - 1)
    assert summary["training"]["chat"]["last_loss"] == pytest.approx(5.0 / 60)
    assert not list(out.glob(".*tmp*"))  # no temporary leftovers


def test_params_vs_perplexity_table_is_sorted_by_size(run, tmp_path):
    write_report(run["metrics"], tmp_path / "r")
    md = (tmp_path / "r" / "summary.md").read_text(encoding="utf-8")
    section = md.split("## Parameters vs perplexity")[1].split("![")[0].strip().splitlines()
    assert section[0] == ("| model | parameters | % of base params | ppl en | ppl en × base "
                          "| ppl zh | ppl zh × base |")
    assert section[2] == "| base | 6.06B | 100.0% | 8.00 | 1.00 | 12.00 | 1.00 |"
    assert section[3] == "| pruned | 3.44B | 56.8% | 40.00 | 5.00 | 90.00 | 7.50 |"
    assert [line.split("|")[1].strip() for line in section[4:]] == ["healed", "chat"]


def test_missing_optional_inputs_are_skipped(run, tmp_path):
    out = tmp_path / "report"
    (out).mkdir()
    (out / "loss.png").write_bytes(b"stale from an earlier run")
    table = write_report({"base": run["metrics"]["base"], "pruned": run["metrics"]["pruned"]},
                         out, plan_json=tmp_path / "missing.json",
                         scores_png=tmp_path / "missing.png",
                         train_logs={"heal": tmp_path / "missing.csv", "chat": None})
    assert len(table.splitlines()) == 2 + 2
    assert (out / "perplexity.png").is_file() and (out / "summary.md").is_file()
    assert not (out / "loss.png").exists() and not (out / "layer_scores.png").exists()
    md = (out / "summary.md").read_text(encoding="utf-8")
    assert "## Pruning plan" not in md and "## Training" not in md


def test_a_missing_metrics_file_is_an_error(tmp_path):
    with pytest.raises(ReportError, match="healed"):
        write_report({"healed": tmp_path / "nope.json"}, tmp_path / "r")


def test_report_from_a_real_evaluation(tiny_llama_dir, tmp_path):
    """The report reads what evaluate_model really writes, extra languages included."""
    from secateurs.evaluate.heldout import evaluate_model
    from secateurs.io import write_parquet

    write_parquet([{"text": "The mill grinds wheat."}], tmp_path / "en.parquet")
    write_parquet([{"text": "La ciudad está junto al río."}], tmp_path / "es.parquet")
    evaluate_model(tiny_llama_dir, {"en": tmp_path / "en.parquet", "es": tmp_path / "es.parquet"},
                   tmp_path / "base.json", prompts=["The mill"], max_new_tokens=4, device="cpu")
    table = write_report({"base": tmp_path / "base.json"}, tmp_path / "r")
    assert table.splitlines()[0] == (
        "| model | layers | parameters | bits/byte en | bits/byte es | ppl en | ppl es "
        "| change vs base |")
    assert table.splitlines()[2].startswith("| base | 6 |")


def test_ema_is_bias_corrected():
    from secateurs.evaluate.report import ema

    assert ema([4.0, 4.0, 4.0]) == pytest.approx([4.0, 4.0, 4.0])
    smoothed = ema([10.0] + [0.0] * 20)
    assert smoothed[0] == pytest.approx(10.0) and 0 < smoothed[-1] < smoothed[1] < 10


def test_human_count():
    assert [human_count(n) for n in (950, 41_000, 3_442_000_000, None)] == [
        "950", "41k", "3.44B", "-"]


def test_training_reports_what_ran_not_the_last_logged_row(run, tmp_path):
    """The run summary (steps, tokens, loss over all steps after a resume) wins over the
    log's last row, which trails the final step by up to logging_steps (issue 14)."""
    summary = tmp_path / "heal.json"
    write_json({"steps": 12, "tokens_seen": 120_832, "train_loss": 2.25}, summary)
    out = tmp_path / "report"
    write_report(run["metrics"], out, train_logs=run["logs"],
                 train_summaries={"heal": summary, "chat": tmp_path / "absent.json"})
    md = (out / "summary.md").read_text(encoding="utf-8")
    assert "| heal | 12 | 120,832 | 2.250 | 5.000 | 0.500 | 2k |" in md
    assert json.loads((out / "summary.json").read_text())["training"]["heal"]["steps"] == 12


def test_landing_page_tells_the_story_in_rst(run, tmp_path):
    """report.rst (Snakemake's workflow description) renders with docutils: the lineage
    with the plan and training, the quality table with kept share, the benchmarks."""
    from docutils.core import publish_parts

    out = tmp_path / "report"
    write_report(run["metrics"], out, plan_json=run["plan"], train_logs=run["logs"],
                 title="Qwen/Qwen3-8B", settings={"heal": {"learning_rate": 0.001}})
    text = (out / "report.rst").read_text(encoding="utf-8")
    assert text.startswith("{% raw %}") and text.rstrip().endswith("{% endraw %}")
    body = text.replace("{% raw %}", "").replace("{% endraw %}", "")
    html = publish_parts(body, writer="html",
                         settings_overrides={"report_level": 2, "halt_level": 2})["html_body"]
    assert "Qwen/Qwen3-8B: base → pruned → healed → chat" in html
    assert "block_influence plan removed layers 16, 17, 18" in html  # the plan
    assert "(kept [0, 16) + [30, 32))" in html
    assert "learning_rate 0.001" in html and "10 steps" in html
    assert "<th" in html and "parameters (kept)" in html and "3.44B (56.8%)" in html
    assert "1.330 (+77.4%)" in html and "3.246 (+81.1%)" in html  # bits per byte, change
    assert "30.0 ± 4.0% (75%)" in html  # the benchmark table: acc, stderr, kept of base


def test_params_plot_only_when_parameters_differ(run, tmp_path):
    out = tmp_path / "report"
    write_report({k: run["metrics"][k] for k in ("pruned", "healed", "chat")}, out)
    assert not (out / "params_vs_perplexity.png").exists()
    assert "params_vs_perplexity.png" not in (out / "summary.md").read_text(encoding="utf-8")
    write_report(run["metrics"], out)
    assert (out / "params_vs_perplexity.png").read_bytes()[:8] == PNG_MAGIC


def test_an_empty_answer_says_why():
    from secateurs.evaluate.report import samples_section

    models = [{"model": "pruned", "samples": [
        {"prompt": "Hi?", "chat": True, "completion": "", "new_tokens": 1, "stop": "end"}]}]
    assert ("- **pruned**: (empty: the model stopped at once, its first token was the end "
            "token)") in samples_section(models)


def test_teacher_cache_size_and_build_time_are_reported(run, tmp_path):
    """Cached distillation: the summary says what the cache cost (issue 20)."""
    summary = tmp_path / "heal.json"
    write_json({"steps": 12, "tokens_seen": 120_832, "train_loss": 2.25, "distill_mode": "cached",
                "teacher_cache": {"top_k": 64, "bytes": 31_000_000, "bytes_per_token": 256.4,
                                  "seconds": 812.3, "mean_top_k_mass": 0.9312}}, summary)
    out = tmp_path / "report"
    write_report(run["metrics"], out, train_logs=run["logs"], train_summaries={"heal": summary})
    md = (out / "summary.md").read_text(encoding="utf-8")
    assert ("cached top-64 of the unpruned model (results/data/teacher_logits): 31.0 MB, "
            "256 B per training token, built once in 812 s; the top 64 hold 93.1%") in md
    rst = (out / "report.rst").read_text(encoding="utf-8")
    assert "distilled from the cached top-64 (31.0 MB, built in 812 s)" in rst
