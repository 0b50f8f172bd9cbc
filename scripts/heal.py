"""Rule heal: continued pretraining of the pruned model (optionally distilled)."""
from pathlib import Path

from secateurs.heal import heal
from secateurs.workflow import rule_log, run_key

training = snakemake.params.training
inputs = [snakemake.input.model, snakemake.input.packed]
with rule_log(snakemake):
    heal(snakemake.input.model, snakemake.input.packed, snakemake.output.model,
         checkpoint_dir=Path(snakemake.params.checkpoints) / run_key(training, *inputs),
         log_csv=snakemake.output.train_log, config=training,
         teacher_dir=snakemake.input.teacher[0] if snakemake.input.teacher else None)
