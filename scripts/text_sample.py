"""Rule text_sample: one text dataset (local or hub) sampled with a seed to a token budget."""
from secateurs.data.text import sample_text
from secateurs.workflow.params import settings_of
from secateurs.workflow.log import rule_log

params = settings_of(snakemake.params)  # the settings the rule tracks (rules/common.smk)

with rule_log(snakemake):
    sample_text(snakemake.params.source, snakemake.output.sample, snakemake.output.stats,
                tokenizer_dir=snakemake.input.get("tokenizer"), **params["settings"])
