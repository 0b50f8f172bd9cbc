"""Run lm-evaluation-harness tasks on one loaded model and keep the numbers the report needs.

Every model of a run (base, pruned, healed, chat) goes through lm-eval's Hugging Face
model class (`lm_eval.models.huggingface.HFLM`) wrapped around the model that
`secateurs.evaluate.heldout.load_model` loaded (safetensors only, our device and dtype),
so lm-eval scores exactly the model the perplexity numbers describe, loaded once.

Tasks come from `evaluate.tasks` (name, few-shot count, item limit). Tasks with a local
copy (`secateurs.evaluate.benchmarks`) are written into a temporary `include_path` and run
with `HF_DATASETS_OFFLINE=1` and `HF_HUB_OFFLINE=1`: nothing touches the network. Only
with `allow_download: true` are other lm-eval tasks loaded from lm-eval's own registry
(and their datasets from the hub).

Per task we keep acc and acc_norm where the task defines them, their standard errors
(lm-eval's: the sample standard error of the mean for these metrics) and the number of
items scored.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from pathlib import Path
from typing import Sequence

from secateurs import settings
from secateurs.evaluate.task_files import source_files

log = logging.getLogger(__name__)

METRICS = ("acc", "acc_norm")
OFFLINE_ENV = {"HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1"}


def go_offline() -> None:
    """Forbid hub access for this process, also where `datasets` read the setting already."""
    os.environ.update(OFFLINE_ENV)
    import datasets.config
    import huggingface_hub.constants

    huggingface_hub.constants.HF_HUB_OFFLINE = True
    datasets.config.HF_HUB_OFFLINE = True
    if hasattr(datasets.config, "HF_DATASETS_OFFLINE"):
        datasets.config.HF_DATASETS_OFFLINE = True


def task_metrics(results: dict, name: str, n: int) -> dict:
    """acc, acc_norm and their stderr from lm-eval's `results[name]`, plus the item count."""
    raw = results.get(name, {})
    out = {"n": n}
    for metric in METRICS:
        if f"{metric},none" in raw:
            out[metric] = float(raw[f"{metric},none"])
            stderr = raw.get(f"{metric}_stderr,none")
            out[f"{metric}_stderr"] = float(stderr) if isinstance(stderr, (int, float)) else None
    if len(out) == 1:
        raise ValueError(f"lm-eval task {name!r} reported neither acc nor acc_norm "
                         f"(got {sorted(raw)}); use a multiple-choice task")
    return out


def items_scored(n_samples: dict, name: str) -> int:
    """Items a task scored; for a group (mmlu, cmmlu) the sum over its subtasks."""
    if name in n_samples:
        return int(n_samples[name]["effective"])
    return sum(int(v["effective"]) for v in n_samples.values())


def run_tasks(model, tokenizer, tasks: Sequence[dict], *, benchmarks_dir=None,
              allow_download: bool = False, batch_size: int = 8, seed: int = 0) -> dict:
    """{task: {acc, acc_stderr, acc_norm, acc_norm_stderr, n, num_fewshot, limit, seconds}}.

    One `simple_evaluate` call per task, since few-shot count and limit are per task; the
    model wrapper and the task index are built once.
    """
    if not tasks:
        return {}
    tasks = settings.fill(settings.section("evaluate")["properties"]["tasks"], list(tasks))
    from lm_eval import simple_evaluate
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager

    from secateurs.evaluate.benchmarks import write_tasks

    # tasks with local copies read them; without benchmarks_dir they are lm-eval's own
    local = [t["name"] for t in tasks
             if benchmarks_dir is not None and source_files(t["name"]) is not None]
    if not allow_download:
        go_offline()
    lm = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=batch_size)
    out = {}
    with tempfile.TemporaryDirectory(prefix="secateurs-tasks-") as task_dir:
        if local:
            write_tasks(local, benchmarks_dir, task_dir)
        manager = TaskManager(include_path=task_dir if local else None,
                              include_defaults=allow_download)
        for task in tasks:
            name = task["name"]
            start = time.perf_counter()
            result = simple_evaluate(model=lm, tasks=[name], num_fewshot=task["num_fewshot"],
                                     limit=task["limit"], task_manager=manager,
                                     log_samples=False, random_seed=seed,
                                     numpy_random_seed=seed, torch_random_seed=seed,
                                     fewshot_random_seed=seed)
            n = items_scored(result["n-samples"], name)
            out[name] = {**task_metrics(result["results"], name, n),
                         "num_fewshot": task["num_fewshot"], "limit": task["limit"],
                         "seconds": round(time.perf_counter() - start, 2)}
            log.info("%s: %s", name, out[name])
    return out


def lm_eval_version() -> str:
    from importlib.metadata import version

    return version("lm_eval")
