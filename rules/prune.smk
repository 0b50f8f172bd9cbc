# Layer scoring of the base model, the pruning plan, and the sliced model.
from secateurs.prune.stage import model_name, score_params


rule score_layers:
    input:
        model=base_model_dir(),
        mix="results/data/mix",
    output:
        scores="results/prune/scores.json",
        table="results/prune/scores.csv",
        heatmap=report(
            "results/prune/heatmap.png",
            caption="../config/report/heatmap.rst",
            category="Pruning",
        ),
    params:
        **tracked(settings=score_params(config["prune"]), access=model_access()),
    threads: 2
    cache: cached_when_enabled(reads_base_model=True)
    resources:
        **resources_for("score_layers", "gpu"),
    log:
        "logs/score_layers/score.log",
    benchmark:
        "benchmarks/score_layers/score.tsv"
    conda:
        "../envs/prune.yaml"
    script:
        "../scripts/score_layers.py"


rule plan_pruning:
    input:
        scores="results/prune/scores.json",
        model=base_model_dir(),
        mix="results/data/mix",  # measured/greedy: the tail of its held-out files
    output:
        plan="results/prune/plan.json",
        mergekit="results/prune/mergekit.yaml",
        figure=report(
            "results/prune/plan.png", caption="../config/report/plan.rst", category="Pruning"
        ),
    params:
        **tracked(settings=config["prune"]["plan"], access=model_access()),
        model_name=model_name(config["base_model"]["source"]),
    resources:
        **resources_for("plan_pruning"),
    log:
        "logs/plan_pruning/plan.log",
    benchmark:
        "benchmarks/plan_pruning/plan.tsv"
    conda:
        "../envs/prune.yaml"
    script:
        "../scripts/plan_pruning.py"


rule slice_model:
    input:
        model=base_model_dir(),
        plan="results/prune/plan.json",
    output:
        directory("results/models/pruned"),
    params:
        **tracked(settings=config["prune"]["slice"], access=model_access()),
    cache: cached_when_enabled(reads_base_model=True)
    resources:
        **resources_for("slice_model"),
    log:
        "logs/slice_model/slice.log",
    benchmark:
        "benchmarks/slice_model/slice.tsv"
    conda:
        "../envs/prune.yaml"
    script:
        "../scripts/slice_model.py"


# with --cache, the cached rules above lose their benchmark: (rules/common.smk)
drop_benchmarks_of_cached_rules()
