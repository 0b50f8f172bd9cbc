"""The evaluation stage's config checks that a schema cannot express: every benchmark
task can run offline (its local files exist) or may download.
"""

from __future__ import annotations

from pathlib import Path

from secateurs.evaluate.task_files import DOCUMENTED, missing_files, source_files
from secateurs.locations import resolve


def check_tasks(config: dict, basedir: Path) -> list[str]:
    """Benchmark tasks that could not run offline, found before any job starts.

    A task with a local definition (secateurs.evaluate.task_files) needs its files under
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
