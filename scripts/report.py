"""Rule report: the perplexity table, plots, pruning plan and sample answers."""
from pathlib import Path

from secateurs.evaluate.recovery import recovery_plot
from secateurs.evaluate.report import write_report
from secateurs.workflow import rule_log

with rule_log(snakemake):
    write_report(dict(zip(snakemake.params.models, snakemake.input.metrics)),
                 Path(snakemake.output.summary).parent, plan_json=snakemake.input.plan,
                 scores_png=snakemake.input.heatmap,
                 train_logs={"heal": snakemake.input.heal_log, "chat": snakemake.input.chat_log})
    recovery_plot(snakemake.input.recovery, dict(zip(snakemake.params.models, snakemake.input.metrics)),
                  snakemake.output.recovery)
