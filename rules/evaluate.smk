# Perplexity and bits per byte on the held-out English and Chinese text, lm-eval tasks
# and sample generations for every model, then the report: table, plots, the plan and the sample answers.


rule evaluate:
    input:
        model=model_dir,
        mix="results/data/mix",
        benchmarks=benchmark_files,
    output:
        "results/eval/{model}.json",
    params:
        **tracked(settings=evaluate_settings(), access=model_access()),
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
        **report_inputs(),
    output:
        summary=report("results/report/summary.md", category="Summary"),
        data="results/report/summary.json",
        perplexity=report(
            "results/report/perplexity.png",
            caption="../config/report/perplexity.rst",
            category="Evaluation",
        ),
        landing="results/report/report.rst",  # the report's first page (Snakefile `report:`)
        **report_figures(),
    params:
        models=MODELS,
        title=model_name(config["base_model"]["source"]),
        **tracked(settings=report_settings()),
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
