"""Rule cosmopedia_sample: Cosmopedia rows sampled with a seed to a token budget."""
from secateurs.data.cosmopedia import sample_cosmopedia
from secateurs.workflow import rule_log

settings = dict(snakemake.params.settings)
settings.pop("source")
with rule_log(snakemake):
    sample_cosmopedia(snakemake.params.source, snakemake.output.sample, snakemake.output.stats,
                      **settings)
