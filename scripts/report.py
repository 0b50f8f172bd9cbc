"""Rule report: the perplexity table, plots, pruning plan, sample answers and the report's
landing page (report.rst)."""
from pathlib import Path

from secateurs.evaluate.recovery import recovery_plot
from secateurs.evaluate.report import write_report
from secateurs.workflow.params import settings_of
from secateurs.workflow.log import rule_log

params = settings_of(snakemake.params)  # the settings the rule tracks (rules/common.smk)

with rule_log(snakemake):
    # plan, heatmap and the training logs are inputs only when their stage runs
    given = snakemake.input
    stages = [stage for stage in ("heal", "chat") if given.get(f"{stage}_log")]
    write_report(dict(zip(snakemake.params.models, snakemake.input.metrics)),
                 Path(snakemake.output.summary).parent, plan_json=given.get("plan"),
                 scores_png=given.get("heatmap"),
                 train_logs={stage: given.get(f"{stage}_log") for stage in stages},
                 train_summaries={stage: given.get(f"{stage}_summary") for stage in stages},
                 title=snakemake.params.title, settings=params["settings"])
    if given.get("recovery"):
        recovery_plot(given.recovery, dict(zip(snakemake.params.models, snakemake.input.metrics)),
                      snakemake.output.recovery, title=snakemake.params.title)
