"""Rule heal: continued pretraining of the pruned model (optionally distilled)."""
from pathlib import Path

from secateurs.train.launch import train_stage
from secateurs.workflow import rule_log, run_key

training = snakemake.params.training
inputs = [snakemake.input.model, snakemake.input.packed]
with rule_log(snakemake):
    train_stage("heal", model=snakemake.input.model, packed=snakemake.input.packed,
                out=snakemake.output.model, log_csv=snakemake.output.train_log, config=training,
                checkpoint_dir=Path(snakemake.params.checkpoints) / run_key(training, *inputs),
                teacher=snakemake.input.teacher[0] if snakemake.input.teacher else None,
                heldout={lang: str(Path(snakemake.input.mix) / f"heldout_{lang}.parquet")
                         for lang in ("en", "zh")},
                recovery_csv=snakemake.output.recovery)
