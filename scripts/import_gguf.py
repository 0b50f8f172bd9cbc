"""Rule import_gguf: a local GGUF base model as a safetensors model directory."""
from secateurs.gguf_import import import_gguf
from secateurs.workflow import rule_log

with rule_log(snakemake):
    import_gguf(snakemake.input[0], snakemake.output[0])
