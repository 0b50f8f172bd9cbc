"""Rule fetch_base_model: a hub model downloaded once (weights, config, tokenizer)."""
from secateurs.base_model.hub import fetch_model
from secateurs.workflow.params import settings_of
from secateurs.workflow.log import rule_log

params = settings_of(snakemake.params)  # the settings the rule tracks (rules/common.smk)

with rule_log(snakemake):
    fetch_model(params["source"], snakemake.output[0], revision=params["revision"],
                allow_pickle=params["allow_pickle"])
