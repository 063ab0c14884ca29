"""What a `fnet finetune` output folder holds besides the weights, in one place for training and
inference: ``fnet_task.json`` (:class:`TaskInfo`: the family, input lengths, reader options, label
names), the tokenizer saved beside the model, and how a labelled split is read for a family."""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fnet.tasks.base import TaskFamily

if TYPE_CHECKING:
    from fnet.data.tokenizer import SavedTokenizer

__all__ = ["TASK_INFO_NAME", "TaskInfo", "task_info", "load_tokenizer", "read_split", "first_examples", "write_jsonl",
           "write_metrics"]

TASK_INFO_NAME = "fnet_task.json"


@dataclass
class TaskInfo:
    """What `fnet finetune` records in ``fnet_task.json``: how to read and featurize inputs."""

    task: str  # the family's canonical name
    seq_len: int
    stride: int
    max_answer_length: int
    reader: dict[str, Any]  # the reader options given at training time
    label_names: list[str]

    def family(self) -> TaskFamily:
        from fnet.tasks import get_family

        return get_family(self.task)

    def save(self, directory: Path) -> None:
        from fnet.io import atomic_write_text

        atomic_write_text(directory / TASK_INFO_NAME, json.dumps(dataclasses.asdict(self), indent=2) + "\n")


def task_info(model_dir: str | os.PathLike) -> TaskInfo:
    """What `fnet finetune` recorded about a directory (or a Hub id of one): task, input length, reader
    options, labels."""
    from fnet.hub import resolve

    path = resolve(model_dir, flag="--model") / TASK_INFO_NAME
    if not path.is_file():
        raise FileNotFoundError(f"{model_dir} has no {TASK_INFO_NAME}: it was not written by `fnet finetune`")
    info = json.loads(path.read_text(encoding="utf-8"))
    known = {f.name for f in dataclasses.fields(TaskInfo)}
    return TaskInfo(**{k: v for k, v in info.items() if k in known})


def load_tokenizer(tokenizer: str | os.PathLike | None, model: str | os.PathLike | None,
                   hint: str = "pass --tokenizer DIR|ID") -> "SavedTokenizer":
    """``--tokenizer`` when given, else the tokenizer saved with ``--model`` (a folder or a Hub id; any kind)."""
    from fnet.tokenization import AutoTokenizer, TokenizerFileError

    if tokenizer:
        return AutoTokenizer.from_pretrained(tokenizer, flag="--tokenizer")
    if not model:
        raise ValueError("no tokenizer: pass --tokenizer DIR|ID (e.g. one made by `fnet tokenizer train`)")
    try:
        return AutoTokenizer.from_pretrained(model, flag="--model")
    except TokenizerFileError as err:
        raise TokenizerFileError(f"{err}; {hint}") from None


def first_examples(examples: Any, limit: int | None) -> Any:
    """The first ``limit`` examples of any reader's result."""
    if limit is None or len(examples) <= limit:
        return examples
    values = {}
    for f in dataclasses.fields(examples):
        value = getattr(examples, f.name)
        values[f.name] = value[:limit] if isinstance(value, list) and len(value) == len(examples) else value
    return type(examples)(**values)


def read_split(family: TaskFamily, path: str, reader: dict[str, Any], limit: int | None,
               inherited: dict[str, Any] | None = None) -> Any:
    """Read a split; ``inherited`` options (labels, problem type of the training split or the saved
    model) apply unless the reader options set them."""
    options = family.options.of({**(inherited or {}), **reader}, where="reader options")
    examples = family.read(path, options)
    if len(examples) == 0:
        raise ValueError(f"{path} holds no examples for task {family.cli_name}")
    return first_examples(examples, limit)


def write_jsonl(path: Path, records: list[dict[str, Any]]) -> None:
    """``predictions.jsonl``: one JSON object per line, atomically."""
    from fnet.io import atomic_write_text

    atomic_write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))


def write_metrics(directory: Path, summary: dict[str, Any]) -> None:
    """``metrics.json`` in ``directory``, atomically."""
    from fnet.io import atomic_write_text

    atomic_write_text(directory / "metrics.json", json.dumps(summary, indent=2) + "\n")
