"""``fnet distill``: a pretrained BERT-family encoder -> a fast FNet student (see fnet.training.distill).

The flags are the fields of :class:`fnet.training.distill.DistillConfig`; with ``--task``, those of
:class:`fnet.training.task_distill.TaskDistillConfig` (a teacher fine-tuned on labels, then a student
trained on its answers). ``--config run.toml`` / ``run.json`` supplies any of them (flags win).
"""

from __future__ import annotations

import argparse
import dataclasses
import json

from fnet.cli import library_log
from fnet.options import add_arguments, build, flag_of, read_options_file
from fnet.training.distill import DistillConfig, distill
from fnet.training.task_distill import TASKS, TaskDistillConfig, task_distill

_GENERAL = {f.name for f in dataclasses.fields(DistillConfig)}
_TASK = {f.name for f in dataclasses.fields(TaskDistillConfig) if f.metadata.get("cli", True)}


def register(subparsers: argparse._SubParsersAction) -> None:
    from fnet.cli.finetune import add_reader_arguments

    parser = subparsers.add_parser(
        "distill",
        help="distil a BERT / sentence-transformers model into a fast FNet student (attention -> Fourier)",
        description="Build an FNet student from a BERT-family teacher (embeddings, feed-forward and LayerNorm "
                    "weights copied; attention replaced by Fourier mixing) and train it to reproduce the teacher's "
                    "hidden states and sentence embeddings on unlabelled text. Runs under torchrun too. With "
                    "--task classification --train FILE: fine-tune the teacher on the labels first, then train "
                    "the student on the teacher's soft labels and hidden states (the output is a classifier that "
                    f"fnet predict takes; with --task the student's --lr defaults to {TaskDistillConfig.lr:g}).",
    )
    add_arguments(parser, DistillConfig)
    add_arguments(parser.add_argument_group("task-specific distillation (with --task)"), TaskDistillConfig,
                  only=sorted(_TASK - _GENERAL))
    add_reader_arguments(parser)
    parser.add_argument("--config", default=None, help="a run config (.json/.toml) whose keys are these options")
    parser.set_defaults(func=run)


def _given(args: argparse.Namespace, names: set[str]) -> list[str]:
    return sorted(name for name in names if getattr(args, name, None) is not None)


def run(args: argparse.Namespace) -> int:
    cls = TaskDistillConfig if args.task else DistillConfig
    other = (_GENERAL - _TASK) if args.task else (_TASK - _GENERAL)
    wrong = _given(args, other)
    if wrong:
        flags = " ".join(flag_of(DistillConfig if args.task else TaskDistillConfig, n) for n in wrong)
        raise ValueError(f"{flags}: {'not an option of fnet distill --task' if args.task else 'needs --task'}")
    from fnet.tasks import get_family

    reader = get_family(args.task or TASKS[0]).options.given(args)
    if reader and not args.task:
        raise ValueError(f"{' '.join('--' + k.replace('_', '-') for k in sorted(reader))}: needs --task")
    config = build(cls, args, read_options_file(args.config, cls) if args.config else None)
    if args.task:
        config = dataclasses.replace(config, reader={**config.reader, **reader})
        with library_log("fnet.training", "fnet distill"):
            summary = task_distill(config)
        if not summary:  # under torchrun, rank 0 reports
            return 0
        print(json.dumps(summary, indent=2, default=str))
        print(f"student saved to {config.output} (fnet predict --model {config.output} \"some text\"); "
              f"the fine-tuned teacher: {summary['teacher']}")
        return 0
    with library_log("fnet.training.distill", "fnet distill"):
        result = distill(config)
    if result.main_process:
        print(json.dumps(result.summary()))
    return 0
