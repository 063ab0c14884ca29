"""`fnet evaluate`: score a fine-tuned model directory on a labelled file."""

from __future__ import annotations

import argparse
import json


def register(subparsers: argparse._SubParsersAction) -> None:
    from fnet.cli.finetune import add_reader_options

    parser = subparsers.add_parser(
        "evaluate", help="score a fine-tuned model on a labelled file",
        description="Prints the metrics and writes metrics.json and predictions.jsonl (to --output, default the model directory).",
    )
    parser.add_argument("--model", required=True, help="directory written by `fnet finetune`")
    parser.add_argument("--data", required=True, help="labelled file in the task's format")
    parser.add_argument("--output", help="where metrics.json and predictions.jsonl go (default: the model directory)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-examples", type=int, help="score only the first N examples")
    add_reader_options(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from fnet.cli.finetune import reader_options
    from fnet.finetuning import evaluate, task_of

    task = task_of(args.model)
    summary = evaluate(args.model, args.data, output=args.output, batch_size=args.batch_size,
                       max_examples=args.max_examples, reader=reader_options(args, task))
    print(json.dumps(summary, indent=2))
    return 0
