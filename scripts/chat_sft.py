"""Rule chat_sft: ChatML fine-tuning of the healed model, loss on assistant turns only."""
from pathlib import Path

from secateurs.train.launch import train_stage
from secateurs.workflow import rule_log, run_key

training = snakemake.params.training
inputs = [snakemake.input.model, snakemake.input.data]
with rule_log(snakemake):
    train_stage("chat-sft", model=snakemake.input.model, data=snakemake.input.data,
                out=snakemake.output.model, log_csv=snakemake.output.train_log, config=training,
                checkpoint_dir=Path(snakemake.params.checkpoints) / run_key(training, *inputs))
