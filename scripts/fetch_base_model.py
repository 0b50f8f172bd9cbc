"""Rule fetch_base_model: a hub model downloaded once (weights, config, tokenizer)."""
from secateurs.hub import fetch_model
from secateurs.rule_params import settings_of
from secateurs.workflow import rule_log

params = settings_of(snakemake.params)  # the settings the rule tracks (rules/common.smk)

with rule_log(snakemake):
    fetch_model(params["source"], snakemake.output[0], revision=params["revision"],
                allow_pickle=params["allow_pickle"])
