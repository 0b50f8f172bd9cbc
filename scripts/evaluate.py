"""Rule evaluate: held-out bits per byte and perplexity per language of the mix, lm-eval tasks and sample generations of one model."""
from pathlib import Path

from secateurs.evaluate.heldout import evaluate_model
from secateurs.workflow.params import settings_of
from secateurs.workflow.log import rule_log

params = settings_of(snakemake.params)  # the settings the rule tracks (rules/common.smk)

mix = Path(snakemake.input.mix)
with rule_log(snakemake):
    evaluate_model(snakemake.input.model,
                   {p.stem.removeprefix("heldout_"): p for p in sorted(mix.glob("heldout_*.parquet"))},
                   snakemake.output[0], name=snakemake.wildcards.model,
                   **params["settings"], **params["access"])
