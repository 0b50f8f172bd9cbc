"""Rule mix: every source mixed by tokens of the base tokenizer, held-out sets per language."""
from pathlib import Path

from secateurs.data.mix import mix_corpora
from secateurs.workflow.params import settings_of
from secateurs.workflow.log import rule_log

# Token counting runs in spawned worker processes, which re-import this file as
# __mp_main__; the guard keeps them from running the rule again.
if __name__ == "__main__":
    params = settings_of(snakemake.params)  # the settings the rule tracks (rules/common.smk)
    # each source's text is results/data/<kind>/<name>/text.parquet
    paths = {Path(path).parent.name: path for path in snakemake.input.texts}
    sources = {name: {**source, "path": paths[name]} for name, source in params["sources"].items()}
    with rule_log(snakemake):
        mix_corpora(sources, snakemake.input.tokenizer, snakemake.output[0],
                    threads=snakemake.threads, **params["settings"])
