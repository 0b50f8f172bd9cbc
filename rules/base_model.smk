# A base model named by hub id is downloaded once (safetensors and tokenizer files only);
# a local directory is used where it is, with no rule at all; a local .gguf file is imported.


if is_gguf(config["base_model"]["source"]):

    rule import_gguf:
        input:
            local_path(config["base_model"]["source"]),
        output:
            directory("results/models/base"),
        cache: cached_when_enabled()
        resources:
            **resources_for("import_gguf"),
        log:
            "logs/import_gguf/import.log",
        benchmark:
            "benchmarks/import_gguf/import.tsv"
        conda:
            "../envs/prune.yaml"
        script:
            "../scripts/import_gguf.py"

    ruleorder: import_gguf > fetch_base_model


rule fetch_base_model:
    output:
        directory("results/models/base"),
    params:
        **tracked(
            source=config["base_model"]["source"],
            revision=config["base_model"]["revision"],
            allow_pickle=config["base_model"]["allow_pickle"],
        ),
    cache: cached_when_enabled()
    retries: 2  # the hub download is the one step that fails transiently on any machine
    resources:
        **resources_for("fetch_base_model"),
    log:
        "logs/fetch_base_model/fetch.log",
    benchmark:
        "benchmarks/fetch_base_model/fetch.tsv"
    conda:
        "../envs/prune.yaml"
    script:
        "../scripts/fetch_base_model.py"


# with --cache, the cached rules above lose their benchmark: (rules/common.smk)
drop_benchmarks_of_cached_rules()
