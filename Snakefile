# secateurs: depth-prune a large language model, heal it, make a chat model of it.
# Run the embedded demo:  snakemake --cores all        (see README.md)
from snakemake.utils import min_version

min_version("9.0")


# A config given with --configfile (a recipe) replaces the demo's whole instead of being
# merged into it, so a recipe never inherits the demo's dump, data or model by accident.
# The path is the workflow's own, so `--directory elsewhere` runs the demo too.
if not workflow.overwrite_configfiles:

    configfile: f"{workflow.basedir}/config/config.yaml"



include: "rules/common.smk"
include: "rules/data.smk"
include: "rules/demo.smk" if is_demo() else "rules/base_model.smk"
include: "rules/prune.smk"
include: "rules/train.smk"
include: "rules/evaluate.smk"


# `snakemake --report` opens on this page (rules/common.smk: the run's summary once made).
report: report_description()


# Reruns follow the package code each rule's script runs, not just the script itself.
track_package_code()


rule all:
    input:
        all_outputs(),


# Settings only a CUDA machine can run (QLoRA, 8-bit AdamW, flash attention) stop the run
# here, before any job or download (secateurs.config.check_machine); a dry run starts no
# job, skips this and plans every recipe on any machine.
onstart:
    check_machine(config, local=workflow.local_exec)


onsuccess:
    print_summary()
