"""`fnet finetune`: train a task model on a labelled file (see fnet.finetuning)."""

from __future__ import annotations

import argparse
import json


def add_reader_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("reading the data files")
    group.add_argument("--format", choices=["csv", "tsv", "jsonl", "json"], help="file format (default: from the extension)")
    group.add_argument("--text-column", help="classification: text column name or 0-based index (default: detected)")
    group.add_argument("--text-pair-column", help="classification: second text column, for sentence pairs")
    group.add_argument("--label-column", help="label column name or index (default: detected)")
    group.add_argument("--problem-type", choices=["single_label_classification", "multi_label_classification", "regression"],
                       help="classification: default detected from the labels")
    group.add_argument("--label-delimiter", help="multi-label: separator inside the label cell (default '|')")
    group.add_argument("--skip-empty", action="store_true", help="classification: drop rows with an empty text instead of failing")
    group.add_argument("--layout", choices=["swag", "cosmosqa"], help="multiple choice: column layout (default: detected)")
    group.add_argument("--answer-mismatch", choices=["error", "fix", "skip"],
                       help="question answering: an answer whose text is not at its answer_start: fail (default), "
                       "move answer_start to the nearest exact match, or drop the answer")


def reader_options(args: argparse.Namespace, task: str) -> dict:
    def column(value):
        return int(value) if value is not None and value.isdigit() else value

    options: dict = {}
    if getattr(args, "format", None):
        options["format"] = {"json": "jsonl"}.get(args.format, args.format)
    if task == "classification":
        for name in ("text_column", "text_pair_column", "label_column"):
            if getattr(args, name, None) is not None:
                options[name] = column(getattr(args, name))
        if getattr(args, "problem_type", None):
            options["problem_type"] = args.problem_type
        if getattr(args, "label_delimiter", None):
            options["label_delimiter"] = args.label_delimiter
        if getattr(args, "skip_empty", False):
            options["skip_empty"] = True
    elif task == "multiple_choice":
        if getattr(args, "layout", None):
            options["layout"] = args.layout
        if getattr(args, "label_column", None):
            options["label_column"] = args.label_column
    else:  # SQuAD JSON and CoNLL have one format each
        options.pop("format", None)
        if task == "question_answering" and getattr(args, "answer_mismatch", None):
            options["on_mismatch"] = args.answer_mismatch
    return options


def register(subparsers: argparse._SubParsersAction) -> None:
    from fnet.finetuning import TASK_CHOICES

    parser = subparsers.add_parser(
        "finetune",
        help="fine-tune a task model (classification, NER, QA, multiple choice)",
        description="Fine-tune a model directory (or a preset, from scratch) on a labelled file. The output "
        "directory holds the best model, its tokenizer, metrics.json and predictions.jsonl.",
    )
    parser.add_argument("--task", required=True, choices=TASK_CHOICES)
    parser.add_argument("--model", required=True, help="model directory (pretrained/converted) or a preset name")
    parser.add_argument("--tokenizer", help="tokenizer directory (default: the model directory)")
    parser.add_argument("--train", required=True, help="training file")
    parser.add_argument("--validation", help="validation file: evaluated each epoch, selects the best epoch")
    parser.add_argument("--output", required=True, help="output directory")
    parser.add_argument("--epochs", type=float, default=3.0)
    parser.add_argument("--lr", type=float, default=5e-5)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--grad-accum", type=int, default=1, help="micro-batches per optimizer step")
    parser.add_argument("--seq-len", type=int, default=128, help="tokens per input (QA: per window)")
    parser.add_argument("--stride", type=int, default=128, help="QA: overlap of consecutive windows, in tokens")
    parser.add_argument("--max-answer-length", type=int, default=30, help="QA: longest answer, in tokens")
    parser.add_argument("--warmup-ratio", type=float, default=0.1)
    parser.add_argument("--weight-decay", type=float, default=0.01)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--bf16", action="store_true", help="bfloat16 autocast")
    parser.add_argument("--early-stopping", type=int, default=0, metavar="EPOCHS",
                        help="stop after this many evaluations without improvement (0: off)")
    parser.add_argument("--max-train-examples", type=int, help="use only the first N training examples")
    parser.add_argument("--max-eval-examples", type=int, help="use only the first N validation examples")
    parser.add_argument("--threads", type=int, help="torch threads")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_reader_options(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from fnet.data.tasks import canonical_task
    from fnet.finetuning import FinetuneOptions, finetune

    task = canonical_task(args.task)
    options = FinetuneOptions(
        task=args.task, model=args.model, train=args.train, validation=args.validation, output=args.output,
        tokenizer=args.tokenizer, epochs=args.epochs, lr=args.lr, batch_size=args.batch_size,
        grad_accum=args.grad_accum, seq_len=args.seq_len, stride=args.stride,
        max_answer_length=args.max_answer_length, warmup_ratio=args.warmup_ratio, weight_decay=args.weight_decay,
        seed=args.seed, bf16=args.bf16, early_stopping=args.early_stopping,
        max_train_examples=args.max_train_examples, max_eval_examples=args.max_eval_examples,
        threads=args.threads, progress=not args.no_progress, reader=reader_options(args, task),
    )
    summary = finetune(options)
    print(json.dumps(summary, indent=2))
    print(f"model saved to {args.output}")
    return 0
