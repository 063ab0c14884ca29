"""``fnet pretrain``: MLM + NSP pretraining from raw text files, on one process or under torchrun.

The flags are the fields of :class:`fnet.training.pretrain.PretrainConfig`. Options come from three
layers, later ones winning: the defaults, a run config file (``--config run.toml`` / ``run.json``
whose keys are the option names), and the command line. ``--config`` may instead point to a model
``config.json`` (it has FNetConfig fields), which then replaces ``--preset``.
"""

from __future__ import annotations

import argparse
import json

from fnet.cli import library_log
from fnet.options import add_arguments, build
from fnet.training.pretrain import PretrainConfig, pretrain, read_config_file


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "pretrain",
        help="pretrain an FNet encoder (MLM + NSP) on raw text; runs under torchrun too",
        description="Pretrain FNetForPreTraining with BERT's masked-LM and next-sentence objectives. "
                    "Run it under `torchrun --nproc_per_node=N` for data parallelism.",
    )
    add_arguments(parser, PretrainConfig, only=("train_files", "tokenizer", "output"))
    parser.add_argument("--config", default=None,
                        help="a model config.json (replaces --preset), or a run config (.json/.toml) whose keys are "
                             "these options")
    add_arguments(parser, PretrainConfig, exclude=("train_files", "tokenizer", "output"))
    parser.set_defaults(func=run)


def resolve_config(args: argparse.Namespace) -> PretrainConfig:
    """Defaults <- the --config file <- the command line."""
    return build(PretrainConfig, args, read_config_file(args.config) if args.config else None)


def run(args: argparse.Namespace) -> int:
    config = resolve_config(args)
    # the library logs its start line; on the command line it reads as before
    with library_log("fnet.training.pretrain", "fnet pretrain"):
        result = pretrain(config)
    if result.main_process:
        print(json.dumps(result.summary()))
    return 0
