"""`fnet evaluate`: score a fine-tuned model directory on a labelled file."""

from __future__ import annotations

import argparse
import json
import sys


def register(subparsers: argparse._SubParsersAction) -> None:
    from fnet.cli import add_config_arguments
    from fnet.cli.finetune import add_reader_arguments
    from fnet.apps.evaluate import EvaluateConfig

    parser = subparsers.add_parser(
        "evaluate", help="score a fine-tuned model on a labelled file",
        description="Prints the metrics and writes metrics.json and predictions.jsonl to --output (default: a new "
                    "folder beside the model, MODEL-eval-DATA; never into the model's folder).",
    )
    add_config_arguments(parser, EvaluateConfig)
    add_reader_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from fnet.cli import config_from
    from fnet.cli.finetune import with_reader_flags
    from fnet import harness
    from fnet.apps.evaluate import EvaluateConfig, evaluate
    from fnet.tasks.folder import task_info

    config = config_from(args, EvaluateConfig)
    config.validate()
    config = with_reader_flags(config, args, task_info(config.model).family())
    summary = evaluate(config)
    if not harness.is_main_process():  # under torchrun rank 0 reports
        return 0
    if summary.get("truncated"):
        print(f"fnet evaluate: {summary['truncated']} of {summary['examples']} examples were longer than "
              f"{summary['seq_len']} tokens and were truncated", file=sys.stderr)
    shown = dict(summary)
    if "calibration" in shown:  # the bins are in metrics.json; the terminal gets the measures
        shown["calibration"] = {k: ({m: x for m, x in v.items() if m != "bins"} if isinstance(v, dict) else v)
                                for k, v in shown["calibration"].items()}
    print(json.dumps(shown, indent=2))
    return 0
