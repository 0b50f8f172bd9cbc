"""Rule wiki_convert: OpenCC conversion (when the source names a profile) and quality filters."""
from secateurs.data.convert import convert_articles
from secateurs.workflow.params import settings_of
from secateurs.workflow.log import rule_log

params = settings_of(snakemake.params)  # the settings the rule tracks (rules/common.smk)

with rule_log(snakemake):
    convert_articles([snakemake.input.articles], snakemake.output.articles,
                     snakemake.output.stats, **params["settings"])
