"""Rule teacher_logits: the unpruned model's top-k log-probabilities over the packed data,
once, for healing by distillation with heal.distill.mode cached."""
from secateurs.train.teacher_logits import build_teacher_cache
from secateurs.workflow.log import rule_log
from secateurs.workflow.params import settings_of

distill = settings_of(snakemake.params)["distill"]  # the settings the rule tracks

with rule_log(snakemake):
    build_teacher_cache(snakemake.input.teacher, snakemake.input.packed, snakemake.output.cache,
                        work_dir=snakemake.params.work, top_k=distill["top_k"],
                        batch_size=distill["batch_size"],
                        # shard size changes no result, so it is read from the config, not
                        # tracked: changing it reruns nothing
                        rows_per_shard=snakemake.config["heal"]["distill"]["rows_per_shard"])
