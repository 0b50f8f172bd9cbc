"""Rule import_gguf: a local GGUF base model as a safetensors model directory."""
from secateurs.base_model.gguf_import import import_gguf
from secateurs.workflow.log import rule_log

with rule_log(snakemake):
    import_gguf(snakemake.input[0], snakemake.output[0])
