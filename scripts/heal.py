"""Rule heal: continued pretraining of the pruned model (optionally distilled).

`params.training` holds the settings that change the result (a change reruns the rule);
logging and checkpoint cadence come from the config itself, so changing them does not."""
from pathlib import Path

from secateurs.train.launch import train_stage
from secateurs.workflow import rule_log

with rule_log(snakemake):
    train_stage("heal", model=snakemake.input.model, packed=snakemake.input.packed,
                out=snakemake.output.model, log_csv=snakemake.output.train_log,
                config={**snakemake.config["heal"], **snakemake.params.training},
                checkpoint_root=snakemake.params.checkpoints,
                teacher=snakemake.input.teacher[0] if snakemake.input.teacher else None,
                heldout={p.stem.removeprefix("heldout_"): str(p)
                         for p in sorted(Path(snakemake.input.mix).glob("heldout_*.parquet"))},
                recovery_csv=snakemake.output.recovery)
