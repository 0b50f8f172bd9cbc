# Config validation, paths and input functions: the only place that knows the config's shape.
import os
import sys
from pathlib import Path

# Rule scripts import the checked-out package, also inside --use-conda environments.
sys.path.insert(0, workflow.basedir)

from snakemake.utils import validate
import secateurs.cluster
from secateurs.config import coerce_overrides, is_gguf, looks_local, resolve, validate_config
from secateurs.settings import result_settings
from secateurs.workflow import export_package_path, package_code_digest

export_package_path(workflow.basedir)

BASEDIR = Path(workflow.basedir)
coerce_overrides(config)
validate_config(config, f"{BASEDIR}/secateurs/schema.yaml", basedir=BASEDIR)
validate(config, "../secateurs/schema.yaml")

MODELS = ["base", "pruned", "healed", "chat"]


wildcard_constraints:
    model="|".join(MODELS),
    dump=r"[A-Za-z0-9_.\-]+",


def track_package_code():
    """Give every script rule a `code` param: the digest of the secateurs modules its
    script imports (secateurs.workflow.package_code_digest), so changing a stage's logic
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


def model_dir(wildcards):
    return {
        "base": base_model_dir(),
        "pruned": "results/models/pruned",
        "healed": "results/models/healed",
        "chat": "results/models/chat",
    }[wildcards.model]


def model_access():
    """Whether pickled weights and remote code may be loaded (both refused by default)."""
    return {k: config["base_model"][k] for k in ("allow_pickle", "trust_remote_code")}


def wiki_articles():
    return expand(
        "results/data/wiki/{dump}/simplified.parquet", dump=config["data"]["wiki"]["dumps"]
    )


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
    return secateurs.cluster.training_resources(config, rule_name, section)


def distill_teacher(wildcards):
    """Distillation (heal.distill.enabled) reads the unpruned model as teacher."""
    return [base_model_dir()] if config["heal"]["distill"]["enabled"] else []


def cosmopedia_source(wildcards, input):
    """The local sample file when there is one (tracked as input), else the hub id."""
    return input[0] if input else config["data"]["cosmopedia"]["source"]


def without(section, *keys):
    """A config section minus some keys, so params carry only what the rule uses."""
    return {k: v for k, v in section.items() if k not in keys}


def resources_for(rule_name, kind="light"):
    """Cluster resources of a rule: the kind's defaults, overridden by config `resources:`."""
    return secateurs.cluster.rule_resources(config, rule_name, kind)


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
    return [
        *expand("results/eval/{model}.json", model=MODELS),
        "results/report/summary.md",
        "results/prune/mergekit.yaml",
    ]


def print_summary():
    summary = Path("results/report/summary.md")
    if summary.exists():
        print(f"\n{summary.read_text(encoding='utf-8')}")
