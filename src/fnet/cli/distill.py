"""``fnet distill``: a pretrained BERT-family encoder -> a fast FNet student (see fnet.training.distill).

The flags are the fields of :class:`fnet.training.distill.DistillConfig`; ``--config run.toml`` /
``run.json`` supplies any of them (command-line flags win).
"""

from __future__ import annotations

import argparse
import json

from fnet.cli import library_log
from fnet.options import add_arguments, build, read_options_file
from fnet.training.distill import DistillConfig, distill


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "distill",
        help="distil a BERT / sentence-transformers model into a fast FNet student (attention -> Fourier)",
        description="Build an FNet student from a BERT-family teacher (embeddings, feed-forward and LayerNorm "
                    "weights copied; attention replaced by Fourier mixing) and train it to reproduce the teacher's "
                    "hidden states and sentence embeddings on unlabelled text. Runs under torchrun too.",
    )
    add_arguments(parser, DistillConfig)
    parser.add_argument("--config", default=None, help="a run config (.json/.toml) whose keys are these options")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    config = build(DistillConfig, args, read_options_file(args.config, DistillConfig) if args.config else None)
    with library_log("fnet.training.distill", "fnet distill"):
        result = distill(config)
    if result.main_process:
        print(json.dumps(result.summary()))
    return 0
