"""Which process this is in a training run of one or several (torchrun, accelerate, deepspeed).

Every launcher exports WORLD_SIZE and RANK; a plain `python -m secateurs heal` has neither
and is the one and only, main, process. The main process alone writes shared files (logs,
the published model); the others train beside it.
"""

from __future__ import annotations

import os


def world_size() -> int:
    """Processes in this run: torchrun/accelerate/deepspeed launchers all export WORLD_SIZE."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def is_main_process() -> bool:
    return int(os.environ.get("RANK", "0")) == 0
