"""Rule demo_base_model: a small Llama pretrained from random weights on the packed mix.

`params.training` holds the settings that change the result; logging and checkpoint
cadence come from the config itself, so changing them does not rerun the rule."""
from secateurs.demo.model import pretrain_demo_model
from secateurs.workflow import rule_log

with rule_log(snakemake):
    pretrain_demo_model(snakemake.input.tokenizer, snakemake.input.packed,
                        snakemake.output.model, log_csv=snakemake.output.train_log,
                        architecture=snakemake.params.model,
                        training={**snakemake.config["demo"]["pretrain"], **snakemake.params.training})
