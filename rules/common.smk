# Config validation, paths and input functions: the only place that knows the config's shape.
import os
import sys
from pathlib import Path

# Rule scripts import the checked-out package, also inside --use-conda environments.
sys.path.insert(0, workflow.basedir)

from snakemake.utils import validate
import secateurs.workflow.cluster
from secateurs.config import ConfigError, check_machine, coerce_overrides, input_model
from secateurs.config import run_models, stage_enabled, validate_config
from secateurs.locations import is_gguf, looks_local, resolve
from secateurs.data import sources as data_sources
from secateurs.workflow.params import tracked, tracked_per
from secateurs.settings import result_settings
from secateurs.workflow.code import export_package_path, package_code_digest

export_package_path(workflow.basedir)

BASEDIR = Path(workflow.basedir)
coerce_overrides(config)
validate_config(config, f"{BASEDIR}/secateurs/schema.yaml", basedir=BASEDIR)
validate(config, "../secateurs/schema.yaml")


def check_data_sources():
    """What the schema cannot say about data.sources (an unknown language), before any job."""
    demo = config["base_model"]["source"] == "demo"
    problems = data_sources.check_sources(config["data"], demo=demo)
    if problems:
        raise ConfigError("invalid configuration:\n" + "\n".join(f"  - {p}" for p in problems))


check_data_sources()

# The models this run makes: a recipe may skip pruning, healing or chat (`enabled: false`).
MODELS = run_models(config)


wildcard_constraints:
    model="|".join(MODELS),
    dump=r"[A-Za-z0-9_.\-]+",
    source=r"[A-Za-z0-9_.\-]+",


def track_package_code():
    """Add to the params of every script-run step the digest of the secateurs modules its
    script imports (secateurs.workflow.code.package_code_digest). Changing a stage's logic then
    reruns that stage and its dependents, and a change elsewhere reruns nothing."""
    for each in workflow.rules:
        if each.script:
            script = Path(each.basedir.get_path_or_uri(secret_free=True)) / each.script
            each.set_params(code=package_code_digest(script, BASEDIR))


def is_demo():
    return config["base_model"]["source"] == "demo"


def local_path(path):
    """A config path resolved against the workflow directory."""
    return str(resolve(path, BASEDIR))


def local_inputs(*sources):
    """The sources that are files here (hub ids are not inputs Snakemake can track)."""
    return [local_path(s) for s in sources if looks_local(s, BASEDIR)]


def base_model_dir():
    source = config["base_model"]["source"]
    if source != "demo" and looks_local(source, BASEDIR) and not is_gguf(source):
        return local_path(source)
    return "results/models/base"


def tokenizer_dir():
    """Mixing and packing count tokens with the base model's tokenizer."""
    return "results/demo/tokenizer" if is_demo() else base_model_dir()


def model_path(model):
    return base_model_dir() if model == "base" else f"results/models/{model}"


def model_dir(wildcards):
    return model_path(wildcards.model)


def stage_input(stage):
    """The model a training stage starts from (the base one when earlier stages are skipped)."""
    return model_path(input_model(config, stage))


def model_access():
    """Whether pickled weights and remote code may be loaded (both refused by default)."""
    return {k: config["base_model"][k] for k in ("allow_pickle", "trust_remote_code")}


def source_text(name):
    """The filtered text of one data source: a wiki's converted articles or a text sample."""
    kind = config["data"]["sources"][name]["kind"]
    return f"results/data/{kind}/{name}/text.parquet"


def source_texts():
    """Every source's text, in config order (the mix and the demo tokenizer read them)."""
    return [source_text(name) for name in config["data"]["sources"]]


def wiki_dump(wildcards):
    return local_path(config["data"]["sources"][wildcards.source]["path"])


def text_sample_inputs(wildcards):
    """A local dataset (tracked), and the base tokenizer when it measures the budget."""
    source = config["data"]["sources"][wildcards.source]
    inputs = {}
    if looks_local(source["path"]):
        inputs["data"] = local_path(source["path"])
    if source["length_column"] is None and source["token_budget"] is not None:
        inputs["tokenizer"] = tokenizer_dir()
    return inputs


def text_sample_path(wildcards, input):
    """The local dataset when there is one, else the hub id."""
    return input.get("data", config["data"]["sources"][wildcards.source]["path"])


def training_settings(section):
    """The settings of a training section that change its result (so only they rerun it),
    with its DeepSpeed file resolved against the workflow."""
    node = config
    for part in section.split("."):
        node = node[part]
    settings = result_settings(node)
    if settings.get("deepspeed"):
        settings["deepspeed"] = local_path(settings["deepspeed"])
    return settings


def training_resources(rule_name, section):
    """GPUs per training process; nodes, tasks and per-node GPUs for several nodes."""
    return secateurs.workflow.cluster.training_resources(config, rule_name, section)


def distill_teacher(wildcards):
    """Distillation (heal.distill.enabled) reads the unpruned model as teacher: online it
    runs it, cached it checks the cache was made from it (without loading it)."""
    return [base_model_dir()] if config["heal"]["distill"]["enabled"] else []


def heal_training_settings():
    """heal's result settings; how the teacher cache is built (batch, shards) is the
    teacher_logits rule's business and changes no healed weight."""
    settings = without(training_settings("heal"), "enabled")
    settings["distill"] = without(settings["distill"], "batch_size", "rows_per_shard")
    return settings


def distill_teacher_logits(wildcards):
    """Cached distillation reads the teacher's top-k, made once by rule teacher_logits."""
    distill = config["heal"]["distill"]
    return ["results/data/teacher_logits"] if distill["enabled"] and distill["mode"] == "cached" else []


def tracked_per_source(kind, **sections):
    """`tracked` params for the {source} wildcard, over the sources of one kind. Each
    section is a function (data config, source name) -> settings."""
    return tracked_per("source", data_sources.of_kind(config["data"], kind),
                       **{name: (lambda source, get=get: get(config["data"], source))
                          for name, get in sections.items()})


def without(section, *keys):
    """A config section minus some keys, so params carry only what the rule uses."""
    return {k: v for k, v in section.items() if k not in keys}


def resources_for(rule_name, kind="light"):
    """Cluster resources of a rule: the kind's defaults, overridden by config `resources:`."""
    return secateurs.workflow.cluster.rule_resources(config, rule_name, kind)


# Between-workflow output cache: `snakemake --cache` with $SNAKEMAKE_OUTPUT_CACHE set.
# Snakemake stores a cached rule's outputs under a hash of how they were made (the rule's
# script, its params, the input files no job makes, and the same for every upstream job)
# and any later run or other workdir that would make them the same way symlinks them
# instead of running the job. Only the rule scripts are hashed, not the secateurs package
# they call: clear the cache after changing the package. Directories are cached whole; a
# rule with several outputs needs them all named (snakemake/caching/__init__.py). Cluster
# jobs neither get a bare --cache passed on nor could hash their upstream (a spawned job's
# DAG holds that job alone): on SLURM everything is computed and nothing stored (README).
OUTPUT_CACHE = workflow.enable_cache


def cached_when_enabled(reads_base_model=False):
    """The `cache:` value of an expensive rule: True when --cache is given, else False.

    Snakemake refuses `benchmark:` on a rule marked for caching (a cache hit has no time to
    record), so the mark is set only when caching is on and
    drop_benchmarks_of_cached_rules() then removes those rules' benchmarks; a run without
    --cache keeps every benchmark. The provenance hash reads every input no job makes as a
    file, and fails on a directory (IsADirectoryError, Snakemake 9.27): rules that read a
    local base model directory, directly or through an upstream job, are not cached.
    """
    if reads_base_model and base_model_is_local_directory():
        return False
    return OUTPUT_CACHE


def base_model_is_local_directory():
    return base_model_dir() != "results/models/base"


def drop_benchmarks_of_cached_rules():
    """Called at the end of each rules file that has cached rules (see above)."""
    for each in workflow.rules:
        if each.cache and each.cache.output:
            each._benchmark = None


def all_outputs():
    pruning = ["results/prune/mergekit.yaml"] if stage_enabled(config, "prune") else []
    return [*expand("results/eval/{model}.json", model=MODELS), "results/report/summary.md",
            *pruning]


def report_inputs():
    """The pruning plan, heatmap and training logs of the stages this run has."""
    inputs = {}
    if stage_enabled(config, "prune"):
        inputs.update(plan="results/prune/plan.json", heatmap="results/prune/heatmap.png")
    if stage_enabled(config, "heal"):
        inputs["heal_log"] = "results/train_logs/heal.csv"
        inputs["heal_summary"] = "results/train_logs/heal.json"
        inputs["recovery"] = "results/train_logs/heal_recovery.csv"
    if stage_enabled(config, "chat"):
        inputs["chat_log"] = "results/train_logs/chat.csv"
        inputs["chat_summary"] = "results/train_logs/chat.json"
    return inputs


def report_figures():
    """The loss plot when a stage trained, the layer-score heatmap when pruning ran."""
    figures = {}
    if stage_enabled(config, "heal") or stage_enabled(config, "chat"):
        figures["loss"] = report(
            "results/report/loss.png", caption="../config/report/loss.rst", category="Training"
        )
    if stage_enabled(config, "heal"):
        figures["recovery"] = report(
            "results/report/recovery.png",
            caption="../config/report/recovery.rst",
            category="Training",
        )
    if stage_enabled(config, "prune"):
        # plotted only when parameter counts differ, which pruning makes them
        figures["tradeoff"] = report(
            "results/report/params_vs_perplexity.png",
            caption="../config/report/tradeoff.rst",
            category="Evaluation",
        )
        # a copy for summary.md; the report shows the prune rule's heatmap.png (once)
        figures["scores"] = "results/report/layer_scores.png"
    return figures


def report_settings():
    """The settings the landing page names beside each trained model."""
    keys = ("method", "learning_rate", "token_budget", "max_steps")
    return {stage: {k: config[stage][k] for k in keys if config[stage].get(k)}
            for stage in ("heal", "chat") if stage_enabled(config, stage)}


def report_description():
    """The report's first page: the run's own story (results/report/report.rst, written by
    the report rule) once it exists, else the workflow's description."""
    landing = Path("results/report/report.rst")
    return str(landing.resolve() if landing.is_file() else BASEDIR / "config/report/workflow.rst")


def print_summary():
    summary = Path("results/report/summary.md")
    if summary.exists():
        print(f"\n{summary.read_text(encoding='utf-8')}")


def evaluate_settings():
    """The evaluate section with benchmarks_dir resolved against the workflow directory and
    chat prompts asked in the chat stage's format unless evaluate names one."""
    settings = dict(config["evaluate"])
    settings["prompt_format"] = settings["prompt_format"] or config["chat"]["prompt_format"]
    if settings["benchmarks_dir"]:
        settings["benchmarks_dir"] = local_path(settings["benchmarks_dir"])
    return settings


def benchmark_files(wildcards):
    """The local files the lm-eval tasks read, so a changed file reruns evaluation."""
    from secateurs.evaluate.task_files import source_files

    root = config["evaluate"]["benchmarks_dir"]
    names = [t["name"] for t in config["evaluate"]["tasks"]]
    rels = {rel.partition("::")[0] for n in names for rel in (source_files(n) or {}).values()}
    return sorted(local_path(str(Path(root) / rel)) for rel in rels) if root else []
