"""Rule chat_sft: ChatML fine-tuning of the healed model, loss on assistant turns only."""
from pathlib import Path

from secateurs.sft import chat_sft
from secateurs.workflow import rule_log, run_key

training = snakemake.params.training
with rule_log(snakemake):
    chat_sft(snakemake.input.model, snakemake.input.data, snakemake.output.model,
             checkpoint_dir=Path(snakemake.params.checkpoints)
             / run_key(training, snakemake.input.model, snakemake.input.data),
             log_csv=snakemake.output.train_log, config=training)
