"""Workflow configuration: readable validation before any job runs.

`snakemake.utils.validate` fills the schema's defaults but reports a failure as a raw
jsonschema dump; users need the key, what is wrong and the fix, so this module turns each
schema error into one such line, then adds the checks a schema cannot express (a plan
that removes more layers than the model has, input files that do not exist).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from secateurs import settings
from secateurs.benchmark_sources import DOCUMENTED, missing_files, source_files
from secateurs.cluster import configured


class ConfigError(ValueError):
    """The configuration cannot run; the message lists every problem found."""


def validate_config(config: dict, schema_path: str | Path, *, basedir: str | Path = ".") -> None:
    """Raise ConfigError naming every invalid key of `config`, with a fix for each."""
    schema = yaml.safe_load(Path(schema_path).read_text())
    validator = jsonschema.Draft202012Validator(schema)
    problems = [_describe(error, schema_path) for error in
                sorted(validator.iter_errors(config), key=lambda e: list(e.absolute_path))]
    if not problems:
        problems = check_semantics(settings.complete_config(config), Path(basedir))
    if problems:
        raise ConfigError("invalid configuration:\n" + "\n".join(f"  - {p}" for p in problems))


def coerce_overrides(config: dict) -> dict:
    """Read command-line values by their schema type, in place.

    Snakemake 9 hands nested `--config` values over as strings (`--config 'chat={learning_rate:
    1.0e-4}'` arrives as '1.0e-4'), which the schema would refuse as the wrong type. A string
    where the schema allows no string is parsed as YAML and kept when it then fits."""
    _coerce(config, settings.schema())
    return config


def _coerce(value: Any, node: dict) -> Any:
    node = settings.resolved(node)
    if isinstance(value, dict):
        props, extra = node.get("properties", {}), node.get("additionalProperties")
        for key in list(value):
            sub = props.get(key, extra if isinstance(extra, dict) else None)
            if sub is not None:
                value[key] = _coerce(value[key], sub)
        return value
    if isinstance(value, list) and isinstance(node.get("items"), dict):
        return [_coerce(item, node["items"]) for item in value]
    types = node.get("type", [])
    types = types if isinstance(types, list) else [types]
    if isinstance(value, str) and types and "string" not in types:
        parsed = yaml.safe_load(value)
        if jsonschema.Draft202012Validator({"type": types}).is_valid(parsed):
            return parsed
    return value


def _describe(error: jsonschema.ValidationError, schema_path: str | Path) -> str:
    key = ".".join(str(part) for part in error.absolute_path) or "(top level)"
    if error.validator == "required":
        missing = re.search(r"'([^']+)' is a required property", error.message)
        name = missing.group(1) if missing else "?"
        full = f"{key}.{name}" if key != "(top level)" else name
        return f"config key `{full}` is missing. Fix: add it (see {schema_path} for its meaning)."
    if error.validator in ("additionalProperties", "unevaluatedProperties"):
        return (f"config key `{key}`: {error.message}. Fix: check the spelling against "
                f"{schema_path}.")
    if error.validator == "type":
        expected = error.validator_value
        return (f"config key `{key}` = {error.instance!r} has the wrong type. "
                f"Fix: give a value of type {expected}.")
    if error.validator == "enum":
        return (f"config key `{key}` = {error.instance!r} is not allowed. "
                f"Fix: use one of {error.validator_value}.")
    return f"config key `{key}` = {_short(error.instance)}: {error.message}. Fix: see {schema_path}."


def _short(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) < 80 else text[:77] + "..."


def check_semantics(config: dict, basedir: Path) -> list[str]:
    """Checks across keys, run once the shapes are right; returns the problems found."""
    problems = _check_inputs(config, basedir)
    problems += _check_plan(config, basedir)
    problems += _check_strategy(config, basedir)
    problems += _check_training_gpus(config)
    problems += _check_tasks(config, basedir)
    problems += check_stages(config)
    problems += _check_gpu_only_settings(config)
    return problems


def _check_tasks(config: dict, basedir: Path) -> list[str]:
    """Benchmark tasks that could not run offline, found before any job starts.

    A task with a local definition (secateurs.benchmark_sources) needs its files under
    `evaluate.benchmarks_dir`; any other task would make lm-eval download its dataset,
    which only `evaluate.allow_download: true` permits.
    """
    evaluate = config["evaluate"]
    folder = evaluate["benchmarks_dir"]
    root = resolve(folder, basedir) if folder else None
    problems = []
    for i, task in enumerate(evaluate["tasks"]):
        name, key = task["name"], f"evaluate.tasks[{i}]"
        if source_files(name) is None:
            if not evaluate["allow_download"]:
                problems.append(
                    f"config key `{key}`: task {name!r} has no local copy, so lm-eval would "
                    f"download it from the Hugging Face hub. Fix: use a local task ({DOCUMENTED}), "
                    "or set evaluate.allow_download: true where the hub is reachable.")
            continue
        if root is None and evaluate["allow_download"]:
            continue  # no local copies given: lm-eval's own task, from the hub
        missing = missing_files(name, root)
        if missing:
            where = f"under {folder}" if folder else "(evaluate.benchmarks_dir is unset)"
            problems.append(
                f"config key `{key}`: task {name!r} reads {', '.join(missing)}, not found {where}. "
                "Fix: set evaluate.benchmarks_dir to a folder holding these files (the layout of "
                "../shared/real-data/benchmarks, see its README; config/demo for the demo's "
                "tasks), or drop the task.")
    return problems


TRAINING_RULES = {"heal": "heal", "chat_sft": "chat"}


def _check_training_gpus(config: dict) -> list[str]:
    """GPUs a training rule asks for that no process would use.

    One training process drives one GPU (DDP/DeepSpeed data parallelism, not a device map),
    so `gpu: 8` with one process would hold seven idle GPUs for the whole job.
    """
    problems = []
    for rule, section in TRAINING_RULES.items():
        gpus = configured(config, rule).get("gpu")
        processes = int(config[section]["num_processes"])
        if isinstance(gpus, int) and gpus > processes:
            problems.append(
                f"config key `resources.{rule}.gpu` = {gpus} but `{section}.num_processes` = "
                f"{processes}: each training process uses one GPU, so {gpus - processes} would "
                f"sit idle. Fix: set {section}.num_processes: {gpus} (GPUs per node)")
    return problems


def resolve(path: str, basedir: Path) -> Path:
    """A config path: absolute as given, relative to the workflow's directory otherwise."""
    candidate = Path(path).expanduser()
    return candidate if candidate.is_absolute() else basedir / candidate


HUB_ID = re.compile(r"[A-Za-z0-9][\w.\-]*/[\w.\-]+")
DATA_SUFFIXES = (".parquet", ".json", ".jsonl", ".gz", ".bz2", ".xml", ".txt", ".csv", ".arrow",
                 ".gguf")


def looks_local(source: str, basedir: str | Path = ".") -> bool:
    """Whether a config source names a local path rather than a hub id (`owner/name`).

    An existing path always wins: `models/tiny` is that directory when it exists, never a
    hub repository of the same name (which would download, and online could fetch an
    unrelated model). Otherwise hub ids may contain dots (`01-ai/Yi-1.5-6B`), so a suffix
    alone does not make a path; a leading ./ ../ / ~, a data-file suffix, or a shape other
    than owner/name does (and `check_source` refuses what is neither).
    """
    return (resolve(source, Path(basedir)).exists() or source.startswith(("/", "./", "../", "~"))
            or source.endswith(DATA_SUFFIXES) or not HUB_ID.fullmatch(source))


def check_source(key: str, source: str, basedir: Path, what: str) -> list[str]:
    """A source must be an existing local path or a well-formed hub id."""
    if resolve(source, basedir).exists():
        return []
    if looks_local(source, basedir):
        return [f"config key `{key}`: {source} does not exist (relative paths are taken from "
                f"{basedir}). Fix: give an existing {what}, or a hub id of the form owner/name."]
    return []


def _check_inputs(config: dict, basedir: Path) -> list[str]:
    problems = []
    checks = []
    for name, source in config["data"]["sources"].items():
        if source["kind"] == "wiki" and not resolve(source["path"], basedir).exists():
            problems.append(f"config key `data.sources.{name}.path`: file {source['path']} does "
                            "not exist. Fix: give the path of a MediaWiki XML dump (.xml or "
                            ".xml.bz2).")
        elif source["kind"] == "text":
            checks.append((f"data.sources.{name}.path", source["path"]))
    checks += [(f"chat.data[{i}].path", item["path"]) for i, item in enumerate(config["chat"].get("data", []))]  # none when chat is off
    for key, source in checks:
        problems += check_source(key, source, basedir, "local file or directory")
    source = config["base_model"]["source"]
    if source == "demo":
        return problems
    if is_gguf(source):
        if not resolve(source, basedir).is_file():
            problems.append(f"config key `base_model.source`: GGUF file {source} does not exist. "
                            "Fix: give an existing .gguf file (for SmolLM2-135M-Instruct run "
                            "`bash .ci/fetch-smollm2`, which prints its path).")
        return problems
    found = check_source("base_model.source", source, basedir, "model directory")
    if found:
        return problems + found
    if looks_local(source, basedir):
        problems += _check_model_dir(resolve(source, basedir), config["base_model"])
    return problems


def _check_model_dir(model_dir: Path, access: dict) -> list[str]:
    """What a local base model directory needs before scoring and slicing can read it."""
    key = "base_model.source"
    if not (model_dir / "config.json").exists():
        return [f"config key `{key}`: {model_dir} is not a model directory (no config.json). "
                "Fix: give a Hugging Face model directory, a .gguf file, a hub id, or demo."]
    problems = []
    weights = {p.suffix for p in model_dir.iterdir()}
    if ".safetensors" not in weights and weights & {".bin", ".pt", ".pth", ".ckpt"}:
        problems.append(
            f"config key `{key}`: {model_dir} holds only pickled weights (.bin), which the slicer "
            "cannot read (it streams safetensors), so `base_model.allow_pickle: true` alone does "
            "not help. Fix: convert them once, e.g. AutoModelForCausalLM.from_pretrained(dir)"
            ".save_pretrained(new_dir, safe_serialization=True), and point base_model.source "
            "at new_dir.")
    model_config = json.loads((model_dir / "config.json").read_text())
    if model_config.get("auto_map") and not access["trust_remote_code"]:
        problems.append(
            f"config key `base_model.trust_remote_code` is false but {model_dir}/config.json "
            "has auto_map (the model's own Python code). Fix: read that code, then set "
            "base_model.trust_remote_code: true, or use a model transformers supports natively.")
    return problems


def base_num_layers(config: dict, basedir: Path) -> int | None:
    """The base model's layer count when it can be known without downloading anything."""
    source = config["base_model"]["source"]
    if source == "demo":
        return config["demo"]["model"]["num_hidden_layers"]
    if is_gguf(source):
        return gguf_num_layers(resolve(source, basedir))
    model_config = resolve(source, basedir) / "config.json"
    if looks_local(source, basedir) and model_config.exists():
        fields = json.loads(model_config.read_text())
        fields = fields.get("text_config", fields)
        for name in ("num_hidden_layers", "n_layer", "num_layers"):
            if name in fields:
                return int(fields[name])
    return None


def is_gguf(source: str) -> bool:
    """Whether `base_model.source` names a GGUF file, which rules/base_model.smk imports."""
    return source.lower().endswith(".gguf")


def gguf_num_layers(path: Path) -> int | None:
    """`<architecture>.block_count` from a GGUF file's metadata header.

    Read by hand, stopping at that key: gguf's GGUFReader parses every tensor record too,
    which takes seconds, and config validation runs at every Snakemake start.
    """
    if not path.is_file():
        return None
    with path.open("rb") as handle:
        metadata = _gguf_metadata(handle, wanted=lambda key: key.endswith(".block_count"))
    counts = [int(v) for k, v in metadata.items() if k.endswith(".block_count")]
    return counts[0] if counts else None


# GGUF v3 metadata value types: id -> struct format (8: string, 9: array; see the gguf spec)
_GGUF_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?",
                 10: "<Q", 11: "<q", 12: "<d"}


def _gguf_metadata(handle, wanted) -> dict:
    """Metadata values whose key satisfies `wanted`, read until the first one is found."""
    import struct

    def read(fmt):
        return struct.unpack(fmt, handle.read(struct.calcsize(fmt)))[0]

    def value(kind):
        if kind in _GGUF_SCALARS:
            return read(_GGUF_SCALARS[kind])
        if kind == 8:
            return handle.read(read("<Q")).decode("utf-8", "replace")
        if kind == 9:
            item_kind, n = read("<I"), read("<Q")
            if item_kind in _GGUF_SCALARS:  # skip a numeric array without decoding it
                handle.seek(n * struct.calcsize(_GGUF_SCALARS[item_kind]), 1)
                return None
            return [value(item_kind) for _ in range(n)]
        raise ValueError(f"unknown GGUF metadata type {kind}")

    if handle.read(4) != b"GGUF":
        return {}
    read("<I"), read("<Q")  # version, tensor count
    found = {}
    for _ in range(read("<Q")):
        key = handle.read(read("<Q")).decode("utf-8", "replace")
        item = value(read("<I"))
        if wanted(key):
            found[key] = item
            break
    return found


def _check_plan(config: dict, basedir: Path) -> list[str]:
    if not config["prune"]["enabled"]:
        return []
    plan = config["prune"]["plan"]
    strategy = plan["strategy"]
    if strategy == "manual":
        if not plan["slices"]:
            return ["config key `prune.plan.slices` is empty but strategy is manual. "
                    "Fix: give half-open layer ranges to keep, e.g. [[0, 24], [55, 59]]."]
    elif plan["n_remove"] is None and plan["target_params"] is None:
        return [f"config keys `prune.plan.n_remove` and `prune.plan.target_params` are both unset "
                f"for strategy {strategy}. Fix: set how many layers to remove (n_remove: 8) or a "
                "parameter budget (target_params: 3B)."]
    layers = base_num_layers(config, basedir)
    if layers is None:
        return []
    n_remove = plan["n_remove"]
    protected = plan["protect_first"] + plan["protect_last"]
    if strategy != "manual" and n_remove is not None and n_remove + protected >= layers:
        return [f"config key `prune.plan.n_remove` = {n_remove}: the base model has {layers} layers"
                f" ({protected} protected), so at most {layers - protected - 1} can be removed. "
                "Fix: lower n_remove (or the protected counts)."]
    if strategy == "manual":
        return _check_slices(plan["slices"], layers)
    return []


def _check_slices(slices: list, layers: int) -> list[str]:
    """Manual slices: each within the model, not reversed, not overlapping another."""
    key = "config key `prune.plan.slices`"
    for start, end in slices:
        if start >= end:
            return [f"{key}: range [{start}, {end}) is empty or reversed. Fix: write each range "
                    "as [first kept layer, one past the last kept layer]."]
        if not 0 <= start < end <= layers:
            return [f"{key}: range [{start}, {end}) is outside the model's {layers} layers. "
                    f"Fix: use half-open ranges within [0, {layers})."]
    ordered = sorted(map(tuple, slices))
    for (a0, a1), (b0, b1) in zip(ordered, ordered[1:]):
        if b0 < a1:
            return [f"{key}: ranges [{a0}, {a1}) and [{b0}, {b1}) overlap, so layers "
                    f"{b0}..{min(a1, b1) - 1} would be kept twice. Fix: make the ranges disjoint "
                    "(mergekit allows repeats; secateurs prunes, so it does not)."]
    return []


STRATEGY_METRICS = {"block": ("last_token", "all_tokens"), "ppl": ("layer", "block")}


def _check_strategy(config: dict, basedir: Path) -> list[str]:
    """What each pruning strategy needs, so none fails after scoring: its metric, the block
    size the scores cover, the calibration set, and a held-out slice kept apart from the
    evaluation's."""
    from secateurs.settings import complete

    prune = config["prune"]
    if not prune["enabled"]:
        return []
    plan = complete("prune.plan", prune["plan"])
    score = complete("prune.score", prune.get("score"))
    strategy, metric, problems = plan["strategy"], plan["metric"], []
    if metric is not None and metric not in STRATEGY_METRICS.get(strategy, ()):
        allowed = STRATEGY_METRICS.get(strategy)
        problems.append(f"config key `prune.plan.metric` = {metric!r} does not apply to strategy "
                        f"{strategy}. Fix: " + (f"use one of {list(allowed)}" if allowed else
                                                "remove it (null)") + ".")
    n_remove, max_block = plan["n_remove"], score["max_block"]
    if (strategy == "block" or (strategy == "ppl" and metric == "block")) and n_remove is None:
        problems.append(f"config key `prune.plan.n_remove` is unset but strategy {strategy} "
                        f"removes one contiguous block. Fix: set n_remove.")
    if strategy == "block" and n_remove and max_block is not None and n_remove > max_block:
        problems.append(f"config key `prune.score.max_block` = {max_block} but "
                        f"`prune.plan.n_remove` = {n_remove}: scoring would not measure blocks "
                        f"of {n_remove} layers. Fix: set max_block >= {n_remove} (or null).")
    languages = sorted({source["language"] for source in config["data"]["sources"].values()})
    if plan["calibration"] not in ["all", *languages]:
        problems.append(f"config key `prune.plan.calibration` = {plan['calibration']!r} is not a "
                        f"calibration set. Fix: use all or one of {languages}.")
    if strategy in ("measured", "greedy"):
        problems += _check_measure(config, plan["measure"], languages)
    return problems


def _check_measure(config: dict, measure: dict, languages: list[str]) -> list[str]:
    """The held-out slice of measured/greedy: inside the held-out files, apart from the
    documents evaluation reads (it reads the head, the slice is the tail)."""
    from secateurs.settings import complete

    problems = []
    heldout = complete("data.mix", config["data"]["mix"])["heldout_docs"]
    docs = measure["docs"]
    if docs >= heldout:
        problems.append(f"config key `prune.plan.measure.docs` = {docs} but `data.mix."
                        f"heldout_docs` = {heldout}: the plan would be measured on every "
                        "held-out document the evaluation reads. Fix: lower measure.docs or "
                        "raise heldout_docs.")
    else:
        max_docs = complete("evaluate", config.get("evaluate"))["max_docs"]
        if max_docs is None or max_docs > heldout - docs:
            problems.append(f"config key `evaluate.max_docs` = {max_docs}: with strategy "
                            f"measured/greedy the last {docs} held-out documents per language "
                            "(prune.plan.measure.docs) choose the plan, so evaluating them too "
                            f"would flatter it. Fix: set evaluate.max_docs: {heldout - docs} "
                            "(data.mix.heldout_docs - prune.plan.measure.docs).")
    weights = measure["language_weights"]
    if weights is not None and sorted(weights) != languages:
        problems.append(f"config key `prune.plan.measure.language_weights` has languages "
                        f"{sorted(weights)}. Fix: give one weight for each of {languages}.")
    return problems


# ----------------------------------------------------------------------------- stages
#
# A recipe may skip pruning, healing or chat (`prune: {enabled: false}`, ...): chat tuning
# of an existing model (YaYi, AEZAKMI), healing of a model pruned elsewhere. The models a
# run makes, and which model each training stage starts from, follow from these flags
# alone; rules/common.smk asks these functions and nothing else.

STAGES = ("prune", "heal", "chat")
STAGE_MODEL = {"prune": "pruned", "heal": "healed", "chat": "chat"}


def stage_enabled(config: dict, stage: str) -> bool:
    return bool(config[stage]["enabled"])


def run_models(config: dict) -> list[str]:
    """The models this run makes and evaluates, in pipeline order: base first, always."""
    return ["base"] + [STAGE_MODEL[s] for s in STAGES if stage_enabled(config, s)]


def input_model(config: dict, stage: str) -> str:
    """The model a stage starts from: the last enabled stage's model before it, else base."""
    models = ["base"] + [STAGE_MODEL[s] for s in STAGES[:STAGES.index(stage)]
                         if stage_enabled(config, s)]
    return models[-1]


def check_stages(config: dict) -> list[str]:
    """Stage combinations that cannot run."""
    problems = []
    if not stage_enabled(config, "prune") and config["heal"]["distill"]["enabled"]:
        problems.append("config key `heal.distill.enabled` is true but `prune.enabled` is false: "
                        "distillation teaches the pruned student from the unpruned base, and "
                        "without pruning they are the same model. Fix: set heal.distill.enabled: "
                        "false, or enable pruning.")
    return problems


GPU_ONLY_OPTIMIZERS = {"adamw_bnb_8bit", "paged_adamw_8bit", "paged_adamw_32bit"}


def _check_gpu_only_settings(config: dict) -> list[str]:
    """QLoRA and bitsandbytes' optimizers run on CUDA only: refuse them before any job when
    their rule would run here (no `resources.<rule>.gpu`) and this machine has no GPU.

    A rule given GPUs runs on a cluster node, whose GPUs cannot be seen from here; the
    training stage checks again there (secateurs.train.models.check_method, secateurs.train.arguments.check_optimizer).
    """
    problems = []
    for rule, section in TRAINING_RULES.items():
        if not stage_enabled(config, section):
            continue
        section_settings = config[section]
        needs = [f"{section}.method: qlora"] if section_settings["method"] == "qlora" else []
        if section_settings["optimizer"] in GPU_ONLY_OPTIMIZERS:
            needs.append(f"{section}.optimizer: {section_settings['optimizer']}")
        if needs and not configured(config, rule).get("gpu") and not _cuda_available():
            problems.append(
                f"config key{'s' if len(needs) > 1 else ''} `{'`, `'.join(needs)}` "
                f"need{'' if len(needs) > 1 else 's'} a CUDA "
                f"GPU (bitsandbytes), and rule {rule} would run on this machine, which has none. "
                f"Fix: run on a GPU machine, give the rule GPUs (resources.{rule}.gpu: 1, on "
                "a cluster), or use method: lora and optimizer: adamw_torch here.")
    return problems


def _cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()
