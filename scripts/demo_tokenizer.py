"""Rule demo_tokenizer: a BPE tokenizer with the ChatML tokens, trained on the demo corpus."""
from secateurs.demo.tokenizer import train_tokenizer_on_parquet
from secateurs.workflow.params import settings_of
from secateurs.workflow.log import rule_log

params = settings_of(snakemake.params)  # the settings the rule tracks (rules/common.smk)

with rule_log(snakemake):
    train_tokenizer_on_parquet(list(snakemake.input.texts),
                               snakemake.output[0], **params["settings"])
