"""Rule chat_data: ShareGPT / Alpaca / messages rows to ChatML-ready conversations."""
from secateurs.data.chat import prepare_chat_data
from secateurs.workflow import rule_log

with rule_log(snakemake):
    prepare_chat_data(snakemake.params.sources, snakemake.output.data, snakemake.output.stats,
                      max_examples=snakemake.params.max_examples,
                      cleaning=snakemake.params.cleaning)
