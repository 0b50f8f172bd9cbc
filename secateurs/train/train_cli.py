"""Command line for the training stages, the entry point a launcher runs in every process.

A rule with one process calls `secateurs.train.heal.heal` / `secateurs.train.sft.chat_sft` directly;
with several it runs this module under torchrun (`secateurs.train.stage.launch_command`)::

    torchrun --standalone --nproc_per_node 2 -m secateurs.train.train_cli heal \
        --model pruned/ --packed packed/ --out healed/ --checkpoint-dir ckpt/heal \
        --log-csv logs/heal.csv --config heal.yaml [--teacher base/] \
        [--deepspeed config/deepspeed/zero2.json]
    python -m secateurs.train.train_cli chat-sft --model healed/ --data chat.jsonl --out chat/ \
        --checkpoint-dir ckpt/chat --log-csv logs/chat.csv --config chat.yaml

`--config` is a YAML or JSON file holding the stage's config section (the `heal:` or
`chat:` mapping itself, or a whole workflow config that contains it).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import socket
import sys
from pathlib import Path


def load_section(path: str, section: str) -> dict:
    text = Path(path).read_text(encoding="utf-8")
    if path.endswith(".json"):
        data = json.loads(text)
    else:
        import yaml

        data = yaml.safe_load(text)
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping (the `{section}:` config section)")
    return dict(data.get(section, data))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m secateurs.train.train_cli", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="stage", required=True)
    heal = sub.add_parser("heal", help="continued pretraining on a packed directory")
    heal.add_argument("--packed", required=True)
    heal.add_argument("--teacher", default=None, help="unpruned model for distillation")
    heal.add_argument("--heldout", action="append", default=[], metavar="LANG=PARQUET",
                      help="held-out text for the recovery curve (repeat per language)")
    heal.add_argument("--recovery-csv", default=None, help="write the recovery curve here")
    chat = sub.add_parser("chat-sft", help="chat fine-tuning on prepare_chat_data's JSONL")
    chat.add_argument("--data", required=True)
    for stage in (heal, chat):
        stage.add_argument("--model", required=True)
        stage.add_argument("--out", required=True)
        stage.add_argument("--checkpoint-dir", required=True)
        stage.add_argument("--log-csv", required=True)
        stage.add_argument("--config", required=True)
        stage.add_argument("--deepspeed", default=None, help="DeepSpeed JSON (config/deepspeed/)")
        stage.add_argument("--summary-json", default=None, help="write the returned summary here")
    return parser.parse_args(argv)


def log_placement() -> None:
    """Which rank runs where: the rule's log then shows a multi-node job used every node."""
    node = os.environ.get("SLURMD_NODENAME") or socket.gethostname()
    logging.getLogger("secateurs.train.train_cli").info(
        "rank %s of %s (local rank %s) on node %s", os.environ.get("RANK", "0"),
        os.environ.get("WORLD_SIZE", "1"), os.environ.get("LOCAL_RANK", "0"), node)


def main(argv: list[str] | None = None) -> dict:
    try:
        return _run(parse_args(argv))
    finally:
        end_process_group()


def end_process_group() -> None:
    """Leave the process group before the interpreter exits.

    A rank that exits with the group alive tears gloo's/NCCL's worker threads down during
    interpreter shutdown, where C++ std::terminate aborts it ("terminate called without an
    active exception", SIGABRT), and the other torchrun agent then waits out its exit
    barrier (300 s). Destroying the group first ends the threads cleanly."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def _run(args: argparse.Namespace) -> dict:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    section = "heal" if args.stage == "heal" else "chat"
    log_placement()
    config = load_section(args.config, section)
    if args.deepspeed:
        config["deepspeed"] = args.deepspeed
    if args.stage == "heal":
        from secateurs.train.heal import heal

        summary = heal(args.model, args.packed, args.out, checkpoint_dir=args.checkpoint_dir,
                       log_csv=args.log_csv, config=config, teacher_dir=args.teacher,
                       heldout=dict(item.split("=", 1) for item in args.heldout),
                       recovery_csv=args.recovery_csv)
    else:
        from secateurs.train.sft import chat_sft

        summary = chat_sft(args.model, args.data, args.out, checkpoint_dir=args.checkpoint_dir,
                           log_csv=args.log_csv, config=config)
    from secateurs.train.stage import is_main_process

    if args.summary_json and is_main_process():
        from secateurs.io import write_json

        write_json(summary, args.summary_json)
    return summary


if __name__ == "__main__":
    main(sys.argv[1:])
