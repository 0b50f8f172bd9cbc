"""Rule tokenize: the training mix tokenized and packed into fixed-length rows."""
from pathlib import Path

from secateurs.packing import tokenize_and_pack
from secateurs.workflow import rule_log

with rule_log(snakemake):
    tokenize_and_pack(Path(snakemake.input.mix) / "train.parquet", snakemake.input.tokenizer,
                      snakemake.output[0], threads=snakemake.threads, **snakemake.params.settings)
