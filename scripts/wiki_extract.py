"""Rule wiki_extract: one MediaWiki dump to plain-text main-namespace articles."""
from secateurs.data.wiki import extract_dump
from secateurs.workflow import rule_log

with rule_log(snakemake):
    extract_dump(snakemake.input.dump, snakemake.output.articles, snakemake.output.stats,
                 threads=snakemake.threads, **snakemake.params.settings)
