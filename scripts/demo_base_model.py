"""Rule demo_base_model: a small Llama pretrained from random weights on the packed mix.

The tracked `training` settings are those that change the result; logging and checkpoint
cadence come from the config itself, so changing them does not rerun the rule."""
from secateurs.demo.model import pretrain_demo_model
from secateurs.workflow.params import settings_of
from secateurs.workflow.log import rule_log

params = settings_of(snakemake.params)  # the settings the rule tracks (rules/common.smk)

with rule_log(snakemake):
    pretrain_demo_model(snakemake.input.tokenizer, snakemake.input.packed,
                        snakemake.output.model, log_csv=snakemake.output.train_log,
                        architecture=params["model"],
                        training={**snakemake.config["demo"]["pretrain"], **params["training"]})
