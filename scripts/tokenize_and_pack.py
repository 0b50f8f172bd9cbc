"""Rule tokenize: the training mix tokenized and packed into fixed-length rows."""
from pathlib import Path

from secateurs.data.packing import tokenize_and_pack
from secateurs.workflow.params import settings_of
from secateurs.workflow.log import rule_log

# Tokenizing runs in spawned worker processes, which re-import this file as __mp_main__;
# the guard keeps them from running the rule again.
if __name__ == "__main__":
    params = settings_of(snakemake.params)  # the settings the rule tracks (rules/common.smk)
    with rule_log(snakemake):
        tokenize_and_pack(Path(snakemake.input.mix) / "train.parquet", snakemake.input.tokenizer,
                          snakemake.output[0], threads=snakemake.threads,
                          **params["settings"])
