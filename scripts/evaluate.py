"""Rule evaluate: held-out bits per byte and perplexity per language of the mix, lm-eval tasks and sample generations of one model."""
from pathlib import Path

from secateurs.evaluate.heldout import evaluate_model
from secateurs.workflow import rule_log

mix = Path(snakemake.input.mix)
with rule_log(snakemake):
    evaluate_model(snakemake.input.model,
                   {p.stem.removeprefix("heldout_"): p for p in sorted(mix.glob("heldout_*.parquet"))},
                   snakemake.output[0], name=snakemake.wildcards.model,
                   **snakemake.params.settings, **snakemake.params.access)
