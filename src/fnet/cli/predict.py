"""`fnet predict`: label new inputs with a fine-tuned model; JSON lines out."""

from __future__ import annotations

import argparse
import json
import sys


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "predict", help="predict with a fine-tuned model (JSON lines)",
        description="Texts on the command line or --input FILE (.txt: one text per line; otherwise the task's "
        "file format, e.g. SQuAD JSON for QA). One JSON object per input is written to stdout (or --output).",
    )
    parser.add_argument("--model", required=True, help="directory written by `fnet finetune`")
    parser.add_argument("texts", nargs="*", metavar="TEXT", help="texts to classify or tag")
    parser.add_argument("--input", help="input file")
    parser.add_argument("--output", help="write JSON lines here instead of stdout")
    parser.add_argument("--mc-samples", type=int, default=0, metavar="N",
                        help="N stochastic passes with dropout on: mean probability and its std per label")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0, help="seed of the dropout masks (with --mc-samples)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from fnet.checkpoint import atomic_write_text
    from fnet.finetuning import predict

    records = predict(args.model, texts=args.texts, input_file=args.input, mc_samples=args.mc_samples,
                      batch_size=args.batch_size, seed=args.seed)
    lines = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
    if args.output:
        atomic_write_text(args.output, lines)
    else:
        sys.stdout.write(lines)
    return 0
