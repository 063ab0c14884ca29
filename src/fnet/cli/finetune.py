"""`fnet finetune`: train a task model on a labelled file (see fnet.training.finetune).

The flags come from :class:`fnet.training.finetune.FinetuneConfig` and the task families' reader
options (:mod:`fnet.tasks`), so each default is written once, there.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from typing import Any


def add_reader_arguments(parser: argparse.ArgumentParser) -> None:
    """One flag per reader option of any family (a flag two families share is added once)."""
    from fnet.options import add_arguments
    from fnet.tasks import FAMILIES

    group = parser.add_argument_group("reading the data files")
    seen: set[str] = set()
    for family in FAMILIES.values():
        names = [f.name for f in dataclasses.fields(family.options)
                 if f.metadata.get("cli", True) and f.name not in seen]
        add_arguments(group, family.options, only=names)
        seen.update(names)


def with_reader_flags(config: Any, args: argparse.Namespace, family: Any) -> Any:
    """``config`` with the family's reader flags given on the command line over its ``reader`` options."""
    return dataclasses.replace(config, reader={**config.reader, **family.options.given(args)})


def register(subparsers: argparse._SubParsersAction) -> None:
    from fnet.cli import add_config_arguments
    from fnet.training.finetune import FinetuneConfig

    parser = subparsers.add_parser(
        "finetune",
        help="fine-tune a task model (classification, NER, QA, multiple choice)",
        description="Fine-tune a model directory (or a preset, from scratch) on a labelled file. The output "
        "directory holds the best model, its tokenizer, metrics.json and predictions.jsonl.",
    )
    add_config_arguments(parser, FinetuneConfig)
    add_reader_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from fnet.cli import config_from
    from fnet.training.finetune import FinetuneConfig, finetune

    config = config_from(args, FinetuneConfig)
    config = with_reader_flags(config, args, config.validate())
    summary = finetune(config)
    if not summary:  # under torchrun rank 0 reports
        return 0
    print(json.dumps(summary, indent=2))
    print(f"model saved to {config.output}")
    return 0
