"""Rule wiki_extract: one MediaWiki dump to plain-text main-namespace articles."""
from secateurs.data.wiki import extract_dump
from secateurs.workflow.params import settings_of
from secateurs.workflow.log import rule_log

params = settings_of(snakemake.params)  # the settings the rule tracks (rules/common.smk)

with rule_log(snakemake):
    extract_dump(snakemake.input.dump, snakemake.output.articles, snakemake.output.stats,
                 threads=snakemake.threads, **params["settings"])
