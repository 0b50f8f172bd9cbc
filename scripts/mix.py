"""Rule mix: English and Chinese mixed by tokens, with held-out sets per language."""
from secateurs.data.mix import mix_corpora
from secateurs.workflow import rule_log

# Token counting runs in spawned worker processes, which re-import this file as
# __mp_main__; the guard keeps them from running the rule again.
if __name__ == "__main__":
    with rule_log(snakemake):
        mix_corpora([snakemake.input.english], list(snakemake.input.chinese),
                    snakemake.input.tokenizer, snakemake.output[0], threads=snakemake.threads,
                    **snakemake.params.settings)
