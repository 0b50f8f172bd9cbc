"""Rule chat_data: ShareGPT / Alpaca / messages rows to ChatML-ready conversations."""
from secateurs.data.chat import prepare_chat_data
from secateurs.workflow.params import settings_of
from secateurs.workflow.log import rule_log

params = settings_of(snakemake.params)  # the settings the rule tracks (rules/common.smk)

with rule_log(snakemake):
    prepare_chat_data(params["sources"], snakemake.output.data, snakemake.output.stats,
                      max_examples=params["max_examples"],
                      cleaning=params["cleaning"])
