"""Rule mix: every source mixed by tokens of the base tokenizer, held-out sets per language."""
from secateurs.data.mix import mix_corpora
from secateurs.workflow import rule_log

# Token counting runs in spawned worker processes, which re-import this file as
# __mp_main__; the guard keeps them from running the rule again.
if __name__ == "__main__":
    sources = {name: {**source, "path": path} for (name, source), path
               in zip(snakemake.params.sources.items(), snakemake.input.texts)}
    with rule_log(snakemake):
        mix_corpora(sources, snakemake.input.tokenizer, snakemake.output[0],
                    threads=snakemake.threads, **snakemake.params.settings)
