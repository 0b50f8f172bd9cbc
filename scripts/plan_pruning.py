"""Rule plan_pruning: which layers to keep, as JSON and as a mergekit passthrough YAML."""
from secateurs.prune.plan import plan_pruning
from secateurs.workflow import rule_log

with rule_log(snakemake):
    plan_pruning(snakemake.input.scores, snakemake.input.model, snakemake.output.plan,
                 snakemake.output.mergekit, **snakemake.params.settings)
