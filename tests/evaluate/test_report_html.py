"""`snakemake --report report.html` on the completed demo run: one self-contained file.

Rules mark their figures with `report()` (rules/prune.smk, rules/evaluate.smk); Snakemake
9 embeds every marked file as a base64 `data:` URI (snakemake/report/common.py), so the
HTML opens anywhere without the results directory. The test checks that the exact bytes
of the heatmap, the perplexity chart, the loss plot and the summary are inside it.
"""

from __future__ import annotations

import base64
import re

import pytest
import yaml

from workflow import QUICK, REPO, snakemake

pytestmark = pytest.mark.slow

EMBEDDED = {
    "layer-score heatmap": "results/prune/heatmap.png",
    "perplexity chart": "results/report/perplexity.png",
    "loss curves": "results/report/loss.png",
    "summary (table, parameters, samples)": "results/report/summary.md",
}


@pytest.fixture(scope="module")
def report_html(demo_run, tmp_path_factory) -> str:
    out = tmp_path_factory.mktemp("report") / "report.html"
    snakemake(demo_run, "--report", str(out), configfiles=(QUICK,))
    return out.read_text(encoding="utf-8")


@pytest.mark.parametrize("what", EMBEDDED)
def test_report_embeds_the_file(demo_run, report_html, what):
    data = (demo_run / EMBEDDED[what]).read_bytes()
    assert base64.b64encode(data).decode() in report_html, f"{what} is not embedded"


def test_report_needs_no_other_file(report_html):
    """No script, stylesheet or image is fetched from the network or a relative path."""
    external = re.findall(r'(?:src|href)\s*=\s*["\'](?!data:|#)([^"\']+)', report_html)
    assert [ref for ref in external if not ref.startswith(("javascript:", "mailto:"))] == []


def test_embedded_summary_has_table_parameters_and_chat_answers(demo_run):
    """The issue asks the report for a perplexity table, parameter counts and sample chat
    answers of base/pruned/healed/chat: summary.md (embedded above) carries them."""
    summary = (demo_run / EMBEDDED["summary (table, parameters, samples)"]).read_text()
    assert re.search(r"\|\s*model\s*\|.*parameters.*\|\s*ppl en\s*\|\s*ppl zh", summary)
    assert "| bits/byte en | bits/byte zh |" in summary  # the comparable figure leads
    for model in ("base", "pruned", "healed", "chat"):  # the demo's own lm-eval tasks
        for task in ("demo_world_en", "demo_world_zh"):
            assert re.search(rf"^\| {task} \| {model} \| 100 \| 0 \| \d", summary, flags=re.M)
    for model in ("base", "pruned", "healed", "chat"):
        assert re.search(rf"^\|\s*{model}\s*\|.*\d(\.\d+)?[KMB]\s*\|", summary, flags=re.M)
    prompt = yaml.safe_load((REPO / "config" / "config.yaml").read_text())["evaluate"]["chat_prompts"][0]
    assert prompt in summary and "**chat**:" in summary
