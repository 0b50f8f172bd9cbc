"""Rule plan_pruning: which layers to keep, as JSON and as a mergekit passthrough YAML."""
from secateurs.prune.plan import plan_pruning
from secateurs.prune.stage import heldout_files
from secateurs.workflow.params import settings_of
from secateurs.workflow.log import rule_log

params = settings_of(snakemake.params)  # the settings the rule tracks (rules/common.smk)

with rule_log(snakemake):
    plan_pruning(snakemake.input.scores, snakemake.input.model, snakemake.output.plan,
                 snakemake.output.mergekit, out_png=snakemake.output.figure,
                 heldout=heldout_files(snakemake.input.mix),
                 model_name=snakemake.params.model_name, **params["settings"],
                 **params["access"])
