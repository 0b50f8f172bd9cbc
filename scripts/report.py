"""Rule report: the perplexity table, plots, pruning plan and sample answers."""
from pathlib import Path

from secateurs.evaluate.recovery import recovery_plot
from secateurs.evaluate.report import write_report
from secateurs.workflow import rule_log

with rule_log(snakemake):
    # plan, heatmap and the training logs are inputs only when their stage runs
    given = snakemake.input
    logs = {stage: given.get(f"{stage}_log") for stage in ("heal", "chat") if given.get(f"{stage}_log")}
    write_report(dict(zip(snakemake.params.models, snakemake.input.metrics)),
                 Path(snakemake.output.summary).parent, plan_json=given.get("plan"),
                 scores_png=given.get("heatmap"), train_logs=logs)
    if given.get("recovery"):
        recovery_plot(given.recovery, dict(zip(snakemake.params.models, snakemake.input.metrics)),
                      snakemake.output.recovery)
