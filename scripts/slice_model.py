"""Rule slice_model: the kept layers streamed into a new Hugging Face model directory."""
from secateurs.io import read_json
from secateurs.prune.slicing import slice_model
from secateurs.workflow.params import settings_of
from secateurs.workflow.log import rule_log

params = settings_of(snakemake.params)  # the settings the rule tracks (rules/common.smk)

with rule_log(snakemake):
    plan = read_json(snakemake.input.plan)
    slice_model(snakemake.input.model, plan["keep"], snakemake.output[0], plan=plan,
                **params["settings"], **params["access"])
