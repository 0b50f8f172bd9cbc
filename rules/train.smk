# Healing (continued pretraining of the pruned model) and chat fine-tuning. Checkpoints
# live under results/checkpoints/, outside the declared outputs, so a killed or failed job
# resumes instead of starting over (Snakemake deletes a failed job's outputs, not these).


rule teacher_logits:
    input:
        teacher=lambda wildcards: base_model_dir(),
        packed="results/data/packed",
    output:
        cache=directory("results/data/teacher_logits"),
    params:
        **tracked(distill=without(config["heal"]["distill"], "enabled", "mode", "alpha",
                                  "temperature", "rows_per_shard")),
        work="results/checkpoints/teacher_logits",  # finished shards survive a killed job
    threads: 2
    cache: cached_when_enabled(reads_base_model=True)
    resources:
        **resources_for("teacher_logits", "gpu"),
    log:
        "logs/teacher_logits/teacher_logits.log",
    benchmark:
        "benchmarks/teacher_logits/teacher_logits.tsv"
    conda:
        "../envs/train.yaml"
    script:
        "../scripts/teacher_logits.py"


rule heal:
    input:
        model=stage_input("heal"),
        packed="results/data/packed",
        teacher=distill_teacher,
        teacher_logits=distill_teacher_logits,
        mix="results/data/mix",  # held-out files for the recovery curve
    output:
        model=directory("results/models/healed"),
        train_log="results/train_logs/heal.csv",
        train_summary="results/train_logs/heal.json",  # what ran (secateurs.train.callbacks.summary_path)
        recovery="results/train_logs/heal_recovery.csv",
    params:
        **tracked(training=heal_training_settings()),
        checkpoints="results/checkpoints/heal",
    threads: 2
    cache: cached_when_enabled(reads_base_model=True)
    resources:
        **training_resources("heal", "heal"),
    log:
        "logs/heal/heal.log",
    benchmark:
        "benchmarks/heal/heal.tsv"
    conda:
        "../envs/train.yaml"
    script:
        "../scripts/heal.py"


rule chat_data:
    input:
        local_inputs(*(item["path"] for item in config["chat"].get("data", []))),
    output:
        data="results/data/chat/train.jsonl",
        stats="results/data/chat/stats.json",
    params:
        **tracked(
            sources=[
                {**item, "path": local_path(item["path"]) if looks_local(item["path"], BASEDIR) else item["path"]}
                for item in config["chat"].get("data", [])
            ],
            max_examples=config["chat"]["max_examples"],
            cleaning=config["chat"]["cleaning"],
        ),
    resources:
        **resources_for("chat_data"),
    log:
        "logs/chat_data/chat_data.log",
    benchmark:
        "benchmarks/chat_data/chat_data.tsv"
    conda:
        "../envs/data.yaml"
    script:
        "../scripts/chat_data.py"


rule chat_sft:
    input:
        model=stage_input("chat"),
        data="results/data/chat/train.jsonl",
    output:
        model=directory("results/models/chat"),
        train_log="results/train_logs/chat.csv",
        train_summary="results/train_logs/chat.json",  # what ran (secateurs.train.callbacks.summary_path)
    params:
        **tracked(training=without(training_settings("chat"), "data", "max_examples", "cleaning", "enabled")),
        checkpoints="results/checkpoints/chat",
    threads: 2
    cache: cached_when_enabled(reads_base_model=True)
    resources:
        **training_resources("chat_sft", "chat"),
    log:
        "logs/chat_sft/chat_sft.log",
    benchmark:
        "benchmarks/chat_sft/chat_sft.tsv"
    conda:
        "../envs/train.yaml"
    script:
        "../scripts/chat_sft.py"


# with --cache, the cached rules above lose their benchmark: (rules/common.smk)
drop_benchmarks_of_cached_rules()
