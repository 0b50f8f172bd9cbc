"""Rule chat_sft: chat fine-tuning of the healed model, loss on assistant turns only.

The tracked `training` settings are those that change the result (a change reruns the rule);
logging and checkpoint cadence come from the config itself, so changing them does not."""
from secateurs.train.launch import train_stage
from secateurs.workflow.params import settings_of
from secateurs.workflow.log import rule_log

params = settings_of(snakemake.params)  # the settings the rule tracks (rules/common.smk)

with rule_log(snakemake):
    train_stage("chat-sft", model=snakemake.input.model, data=snakemake.input.data,
                out=snakemake.output.model, log_csv=snakemake.output.train_log,
                config={**snakemake.config["chat"], **params["training"]},
                checkpoint_root=snakemake.params.checkpoints)
