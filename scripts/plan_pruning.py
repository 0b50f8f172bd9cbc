"""Rule plan_pruning: which layers to keep, as JSON and as a mergekit passthrough YAML."""
from secateurs.prune.plan import plan_pruning
from secateurs.prune.stage import heldout_files
from secateurs.workflow import rule_log

with rule_log(snakemake):
    plan_pruning(snakemake.input.scores, snakemake.input.model, snakemake.output.plan,
                 snakemake.output.mergekit, out_png=snakemake.output.figure,
                 heldout=heldout_files(snakemake.input.mix),
                 model_name=snakemake.params.model_name, **snakemake.params.settings,
                 **snakemake.params.access)
