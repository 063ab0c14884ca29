"""`fnet predict`: label new inputs with a fine-tuned model; JSON lines out."""

from __future__ import annotations

import argparse
import json
import sys


def register(subparsers: argparse._SubParsersAction) -> None:
    from fnet.cli import add_config_arguments
    from fnet.cli.finetune import add_reader_arguments
    from fnet.apps.predict import PredictConfig

    parser = subparsers.add_parser(
        "predict", help="predict with a fine-tuned model (JSON lines)",
        description="Texts on the command line or --input FILE (.txt: one text per line; otherwise the task's "
        "file format, e.g. SQuAD JSON for QA). One JSON object per input is written to stdout (or --output).",
    )
    parser.add_argument("texts", nargs="*", default=None, metavar="TEXT", help="texts to classify or tag")
    add_config_arguments(parser, PredictConfig)
    add_reader_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from fnet import run_folder
    from fnet.cli import config_from
    from fnet.cli.finetune import with_reader_flags
    from fnet.tasks.folder import task_info
    from fnet import harness
    from fnet.apps.predict import PredictConfig, predict

    config = config_from(args, PredictConfig)
    config.validate()
    harness.check_device(config)  # before the model folder is read
    config = with_reader_flags(config, args, task_info(config.model).family())
    records = predict(config)
    if not harness.is_main_process():  # under torchrun rank 0 writes
        return 0
    truncated = sum(bool(r.get("truncated")) for r in records)
    skipped = sum("skipped" in r for r in records)
    if truncated:
        print(f"fnet predict: {truncated} of {len(records)} inputs were longer than the model's input length and "
              "were truncated (their records have \"truncated\": true)", file=sys.stderr)
    if skipped:
        print(f"fnet predict: {skipped} of {len(records)} inputs were empty and got no prediction "
              "(their records have \"skipped\")", file=sys.stderr)
    temperatures = {r["temperature"] for r in records if "temperature" in r}
    if temperatures:
        print(f"fnet predict: probabilities scaled by the temperature {temperatures.pop():.4g} fitted by `fnet "
              "calibrate` (temperature.json; --no-calibrated for the plain softmax)", file=sys.stderr)
    lines = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
    if config.output:
        with run_folder.claim_file(config.output, overwrite=config.overwrite, inputs=config.inputs()) as tmp:
            tmp.write_text(lines, encoding="utf-8")
    else:
        sys.stdout.write(lines)
    return 0
