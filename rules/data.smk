# Healing corpus: zhwiki -> plain text -> Simplified script; Cosmopedia sample; the 2:1
# token mix with held-out sets; tokenized and packed with the base model's tokenizer.


rule wiki_extract:
    input:
        dump=lambda w: local_path(config["data"]["wiki"]["dumps"][w.dump]),
    output:
        articles="results/data/wiki/{dump}/articles.parquet",
        stats="results/data/wiki/{dump}/extract_stats.json",
    params:
        settings=without(config["data"]["wiki"], "dumps", "threads"),
    threads: config["data"]["wiki"]["threads"]
    cache: cached_when_enabled()
    resources:
        **resources_for("wiki_extract"),
    log:
        "logs/wiki_extract/{dump}.log",
    benchmark:
        "benchmarks/wiki_extract/{dump}.tsv"
    conda:
        "../envs/data.yaml"
    script:
        "../scripts/wiki_extract.py"


rule wiki_convert:
    input:
        articles="results/data/wiki/{dump}/articles.parquet",
    output:
        articles="results/data/wiki/{dump}/simplified.parquet",
        stats="results/data/wiki/{dump}/convert_stats.json",
    params:
        settings=config["data"]["convert"],
    cache: cached_when_enabled()
    resources:
        **resources_for("wiki_convert"),
    log:
        "logs/wiki_convert/{dump}.log",
    benchmark:
        "benchmarks/wiki_convert/{dump}.tsv"
    conda:
        "../envs/data.yaml"
    script:
        "../scripts/wiki_convert.py"


rule cosmopedia_sample:
    input:
        local_inputs(config["data"]["cosmopedia"]["source"]),
    output:
        sample="results/data/cosmopedia/sample.parquet",
        stats="results/data/cosmopedia/stats.json",
    params:
        settings=config["data"]["cosmopedia"],
        source=cosmopedia_source,
    cache: cached_when_enabled()
    resources:
        **resources_for("cosmopedia_sample"),
    log:
        "logs/cosmopedia_sample/sample.log",
    benchmark:
        "benchmarks/cosmopedia_sample/sample.tsv"
    conda:
        "../envs/data.yaml"
    script:
        "../scripts/cosmopedia_sample.py"


rule mix:
    input:
        english="results/data/cosmopedia/sample.parquet",
        chinese=wiki_articles(),
        tokenizer=tokenizer_dir(),
    output:
        directory("results/data/mix"),
    params:
        settings=config["data"]["mix"],
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
        settings=without(config["data"]["tokenize"], "threads"),
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
