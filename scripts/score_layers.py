"""Rule score_layers: Block Influence and angular distance of every layer (block)."""
from pathlib import Path

from secateurs.prune.scoring import score_layers
from secateurs.workflow.params import settings_of
from secateurs.workflow.log import rule_log

params = settings_of(snakemake.params)  # the settings the rule tracks (rules/common.smk)

with rule_log(snakemake):
    score_layers(snakemake.input.model, Path(snakemake.input.mix) / "train.parquet",
                 snakemake.output.scores, snakemake.output.table, snakemake.output.heatmap,
                 **params["settings"], **params["access"])
