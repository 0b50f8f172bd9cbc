"""Rule fetch_base_model: a hub model downloaded once (weights, config, tokenizer)."""
from secateurs.hub import fetch_model
from secateurs.workflow import rule_log

with rule_log(snakemake):
    fetch_model(snakemake.params.source, snakemake.output[0], revision=snakemake.params.revision,
                allow_pickle=snakemake.params.allow_pickle)
