# Perplexity on the held-out English and Chinese text and sample generations for every
# model, then the report: table, plots, the plan and the sample answers.


rule evaluate:
    input:
        model=model_dir,
        mix="results/data/mix",
    output:
        "results/eval/{model}.json",
    params:
        settings=config["evaluate"],
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
        recovery="results/train_logs/heal_recovery.csv",
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
        recovery=report(
            "results/report/recovery.png",
            caption="../config/report/recovery.rst",
            category="Training",
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
