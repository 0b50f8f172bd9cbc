"""Rule wiki_convert: OpenCC conversion (when the source names a profile) and quality filters."""
from secateurs.data.convert import convert_articles
from secateurs.workflow import rule_log

with rule_log(snakemake):
    convert_articles([snakemake.input.articles], snakemake.output.articles,
                     snakemake.output.stats, **snakemake.params.settings)
