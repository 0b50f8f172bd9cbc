# The embedded demo's base model: a tokenizer trained on the demo corpus, then a small
# Llama pretrained from random weights on the packed mix (the held-out split excluded), so
# that its layers carry real structure and its perplexities mean something.


rule demo_tokenizer:
    input:
        texts=source_texts(),
    output:
        directory("results/demo/tokenizer"),
    params:
        **tracked(settings=config["demo"]["tokenizer"]),
    cache: cached_when_enabled()
    resources:
        **resources_for("demo_tokenizer"),
    log:
        "logs/demo_tokenizer/tokenizer.log",
    benchmark:
        "benchmarks/demo_tokenizer/tokenizer.tsv"
    conda:
        "../envs/data.yaml"
    script:
        "../scripts/demo_tokenizer.py"


rule demo_base_model:
    input:
        tokenizer="results/demo/tokenizer",
        packed="results/data/packed",
    output:
        model=directory("results/models/base"),
        train_log="results/train_logs/demo_pretrain.csv",
    params:
        **tracked(model=config["demo"]["model"], training=training_settings("demo.pretrain")),
    threads: 2
    cache: cached_when_enabled()
    resources:
        **resources_for("demo_base_model", "gpu"),
    log:
        "logs/demo_base_model/model.log",
    benchmark:
        "benchmarks/demo_base_model/model.tsv"
    conda:
        "../envs/train.yaml"
    script:
        "../scripts/demo_base_model.py"


# with --cache, the cached rules above lose their benchmark: (rules/common.smk)
drop_benchmarks_of_cached_rules()
