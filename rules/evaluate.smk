# Perplexity and bits per byte on the held-out English and Chinese text, lm-eval tasks
# and sample generations for every model, then the report: table, plots, the plan and the sample answers.


def evaluate_settings():
    """The evaluate section with benchmarks_dir resolved against the workflow directory."""
    settings = dict(config["evaluate"])
    if settings["benchmarks_dir"]:
        settings["benchmarks_dir"] = local_path(settings["benchmarks_dir"])
    return settings


def benchmark_files(wildcards):
    """The local files the lm-eval tasks read, so a changed file reruns evaluation."""
    from secateurs.benchmark_sources import source_files

    root = config["evaluate"]["benchmarks_dir"]
    names = [t["name"] for t in config["evaluate"]["tasks"]]
    rels = {rel.partition("::")[0] for n in names for rel in (source_files(n) or {}).values()}
    return sorted(local_path(str(Path(root) / rel)) for rel in rels) if root else []


rule evaluate:
    input:
        model=model_dir,
        mix="results/data/mix",
        benchmarks=benchmark_files,
    output:
        "results/eval/{model}.json",
    params:
        settings=evaluate_settings(),
        access=model_access(),
    threads: 2
    resources:
        **resources_for("evaluate", "gpu"),
    log:
        "logs/evaluate/{model}.log",
    benchmark:
        "benchmarks/evaluate/{model}.tsv"
    conda:
        "../envs/evaluate.yaml"
    script:
        "../scripts/evaluate.py"


rule report:
    input:
        metrics=expand("results/eval/{model}.json", model=MODELS),
        plan="results/prune/plan.json",
        heatmap="results/prune/heatmap.png",
        heal_log="results/train_logs/heal.csv",
        chat_log="results/train_logs/chat.csv",
    output:
        summary=report("results/report/summary.md", category="Summary"),
        data="results/report/summary.json",
        perplexity=report(
            "results/report/perplexity.png",
            caption="../config/report/perplexity.rst",
            category="Evaluation",
        ),
        loss=report(
            "results/report/loss.png", caption="../config/report/loss.rst", category="Training"
        ),
        tradeoff=report(
            "results/report/params_vs_perplexity.png",
            caption="../config/report/tradeoff.rst",
            category="Evaluation",
        ),
        scores=report(
            "results/report/layer_scores.png",
            caption="../config/report/heatmap.rst",
            category="Pruning",
        ),
    params:
        models=MODELS,
    resources:
        **resources_for("report"),
    log:
        "logs/report/report.log",
    benchmark:
        "benchmarks/report/report.tsv"
    conda:
        "../envs/evaluate.yaml"
    script:
        "../scripts/report.py"
