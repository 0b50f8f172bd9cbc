"""`snakemake --report report.html` on the completed demo run: one self-contained file.

Rules mark their figures with `report()` (rules/prune.smk, rules/evaluate.smk); Snakemake
9 embeds every marked file as a base64 `data:` URI (snakemake/report/common.py), so the
HTML opens anywhere without the results directory. The test checks that the exact bytes
of the heatmap, the perplexity chart, the loss plot and the summary are inside it.
"""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess

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
def report_file(demo_run, tmp_path_factory):
    out = tmp_path_factory.mktemp("report") / "report.html"
    snakemake(demo_run, "--report", str(out), configfiles=(QUICK,))
    return out


@pytest.fixture(scope="module")
def report_html(report_file) -> str:
    return report_file.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def shown_page(report_file) -> str:
    """The report's first page as headless Chromium renders it (its JavaScript run), the
    page's own data scripts removed: only what a reader sees is left."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("chromium is not installed (Debian: apt-get install -y chromium)")
    result = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu",
                             "--virtual-time-budget=10000", "--dump-dom",
                             report_file.as_uri()], capture_output=True, text=True, timeout=180)
    if result.returncode != 0 or "<body" not in result.stdout:
        pytest.skip(f"chromium could not render the page: {result.stderr[-500:]}")
    return re.sub(r"<script.*?</script>", "", result.stdout, flags=re.S)


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


def test_first_page_tells_the_story(demo_run, shown_page):
    """The landing page (results/report/report.rst, the workflow description) shows, as
    rendered tables, the lineage, the quality table with bits per byte and kept share,
    and the benchmark table (issue 14)."""
    summary = json.loads((demo_run / "results/report/summary.json").read_text())
    assert "demo base model: base → pruned → healed → chat" in shown_page
    assert "<table" in shown_page and "parameters (kept)" in shown_page
    for row in summary["models"]:
        assert f"{row['bits_per_byte']['en']:.3f}" in shown_page, row["model"]
    assert "demo_world_zh" in shown_page  # the benchmark table
    assert "removed" in shown_page and "from healed" in shown_page


def test_every_figure_once(demo_run, report_html):
    """The layer-score heatmap is shown once (the prune rule's), not again as the report's
    copy; the parameters plot only with parameter counts that differ."""
    heatmap = base64.b64encode((demo_run / "results/prune/heatmap.png").read_bytes()).decode()
    assert report_html.count(heatmap) == 1
