"""Rule heal: continued pretraining of the pruned model (optionally distilled).

The tracked `training` settings are those that change the result (a change reruns the rule);
logging and checkpoint cadence come from the config itself, so changing them does not."""
from pathlib import Path

from secateurs.train.launch import train_stage
from secateurs.workflow.params import settings_of
from secateurs.workflow.log import rule_log

params = settings_of(snakemake.params)  # the settings the rule tracks (rules/common.smk)

with rule_log(snakemake):
    train_stage("heal", model=snakemake.input.model, packed=snakemake.input.packed,
                out=snakemake.output.model, log_csv=snakemake.output.train_log,
                config={**snakemake.config["heal"], **params["training"]},
                checkpoint_root=snakemake.params.checkpoints,
                teacher=snakemake.input.teacher[0] if snakemake.input.teacher else None,
                teacher_logits=(snakemake.input.teacher_logits[0]
                                if snakemake.input.teacher_logits else None),
                heldout={p.stem.removeprefix("heldout_"): str(p)
                         for p in sorted(Path(snakemake.input.mix).glob("heldout_*.parquet"))},
                recovery_csv=snakemake.output.recovery)
