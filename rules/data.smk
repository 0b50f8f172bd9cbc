# Healing corpus: every source of data.sources is its own job (a MediaWiki dump extracted,
# converted when it names an OpenCC profile, and filtered; or a text dataset sampled to a
# token budget), then the token mix of all sources with held-out sets per language,
# tokenized and packed with the base model's tokenizer.


rule wiki_extract:
    input:
        dump=wiki_dump,
    output:
        articles="results/data/wiki/{source}/articles.parquet",
        stats="results/data/wiki/{source}/extract_stats.json",
    params:
        **tracked_per_source("wiki", settings=data_sources.extract_settings),
    threads: lambda w: config["data"]["sources"][w.source]["threads"]
    cache: cached_when_enabled()
    resources:
        **resources_for("wiki_extract"),
    log:
        "logs/wiki_extract/{source}.log",
    benchmark:
        "benchmarks/wiki_extract/{source}.tsv"
    conda:
        "../envs/data.yaml"
    script:
        "../scripts/wiki_extract.py"


rule wiki_convert:
    input:
        articles="results/data/wiki/{source}/articles.parquet",
    output:
        articles="results/data/wiki/{source}/text.parquet",
        stats="results/data/wiki/{source}/convert_stats.json",
    params:
        **tracked_per_source("wiki", settings=data_sources.convert_settings),
    cache: cached_when_enabled()
    resources:
        **resources_for("wiki_convert"),
    log:
        "logs/wiki_convert/{source}.log",
    benchmark:
        "benchmarks/wiki_convert/{source}.tsv"
    conda:
        "../envs/data.yaml"
    script:
        "../scripts/wiki_convert.py"


rule text_sample:
    input:
        unpack(text_sample_inputs),
    output:
        sample="results/data/text/{source}/text.parquet",
        stats="results/data/text/{source}/stats.json",
    params:
        **tracked_per_source("text", settings=data_sources.text_settings),
        source=text_sample_path,
    cache: cached_when_enabled(reads_base_model=True)
    resources:
        **resources_for("text_sample"),
    log:
        "logs/text_sample/{source}.log",
    benchmark:
        "benchmarks/text_sample/{source}.tsv"
    conda:
        "../envs/data.yaml"
    script:
        "../scripts/text_sample.py"


rule mix:
    input:
        texts=source_texts(),
        tokenizer=tokenizer_dir(),
    output:
        directory("results/data/mix"),
    params:
        **tracked(settings=config["data"]["mix"], sources=data_sources.mix_sources(config["data"])),
    threads: 2
    cache: cached_when_enabled(reads_base_model=True)
    resources:
        **resources_for("mix"),
    log:
        "logs/mix/mix.log",
    benchmark:
        "benchmarks/mix/mix.tsv"
    conda:
        "../envs/data.yaml"
    script:
        "../scripts/mix.py"


rule tokenize:
    input:
        mix="results/data/mix",
        tokenizer=tokenizer_dir(),
    output:
        directory("results/data/packed"),
    params:
        **tracked(settings=without(config["data"]["tokenize"], "threads")),
    threads: config["data"]["tokenize"]["threads"]
    cache: cached_when_enabled(reads_base_model=True)
    resources:
        **resources_for("tokenize"),
    log:
        "logs/tokenize/tokenize.log",
    benchmark:
        "benchmarks/tokenize/tokenize.tsv"
    conda:
        "../envs/data.yaml"
    script:
        "../scripts/tokenize_and_pack.py"


# with --cache, the cached rules above lose their benchmark: (rules/common.smk)
drop_benchmarks_of_cached_rules()
