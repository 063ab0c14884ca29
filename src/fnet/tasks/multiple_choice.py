"""Multiple choice (SWAG, Cosmos QA): one context, a question, N candidate endings, one right.

Reader: CSV or JSON lines in the SWAG or Cosmos QA column layout. Featurization pairs the context
with each ``question + ending`` into ``(b, c, n)`` inputs; the metric is accuracy.

Legend: b rows, c choices, n tokens.
"""

from __future__ import annotations

import dataclasses
import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fnet.lazy import numpy as np  # imported on first use: the CLI reads this module for its flags

from fnet.data.features import Features, model_inputs
from fnet.data.rows import detect_format, file_error, is_int_string, label_to_str, read_rows
from fnet.options import option
from fnet.tasks.base import ReaderOptions, TaskFamily, eval_scores, format_option, softmax
import fnet.tasks.metrics as M

if TYPE_CHECKING:
    from fnet.data.tokenizer import Tokenizer

__all__ = ["MultipleChoiceExamples", "MultipleChoiceReaderOptions", "read_multiple_choice",
           "featurize_multiple_choice", "MultipleChoice"]

_LAYOUTS = {
    # name: (context column, question column, ending column prefix)
    "swag": ("sent1", "sent2", "ending"),
    "cosmosqa": ("context", "question", "answer"),
}


@dataclass
class MultipleChoiceExamples:
    """``contexts[i]`` with ``questions[i]`` and the candidate ``endings[i]`` (all rows have the
    same number of endings); ``labels[i]`` is the index of the right ending or ``None`` if unknown."""

    ids: list[str]
    contexts: list[str]
    questions: list[str]
    endings: list[list[str]]
    labels: list[int | None]
    layout: str = ""
    source: str = ""

    def __len__(self) -> int:
        return len(self.contexts)

    @property
    def num_choices(self) -> int:
        return len(self.endings[0]) if self.endings else 0


@dataclass
class MultipleChoiceReaderOptions(ReaderOptions):
    """How to read a multiple-choice file."""

    format: str | None = format_option()
    layout: str | None = option(None, "multiple choice: column layout (default: detected)", choices=tuple(_LAYOUTS))
    label_column: str = option("label", "multiple choice: label column name")
    # default: the first of id, video-id, fold-ind present; else the row number
    id_column: str | None = option(None, "column holding the example id", cli=False)
    encoding: str = option("utf-8", "text encoding of the file", cli=False)


# --------------------------------------------------------------------------------------------------
# reading and featurization
# --------------------------------------------------------------------------------------------------


def read_multiple_choice(path: str | Path, options: MultipleChoiceReaderOptions | None = None,
                         **overrides: Any) -> MultipleChoiceExamples:
    """Read multiple-choice data from CSV or JSON lines (options: :class:`MultipleChoiceReaderOptions`,
    or its fields as keywords).

    Layouts (detected from the column names unless ``layout`` is given):

    * ``"swag"``: ``sent1``, ``sent2``, ``ending0..ending{N-1}``, ``label``;
    * ``"cosmosqa"``: ``context``, ``question``, ``answer0..answer{N-1}``, ``label``.

    A missing label column (or an empty / ``-1`` label, as in unlabelled test sets) gives ``None``.
    """
    options = dataclasses.replace(options or MultipleChoiceReaderOptions(), **overrides)
    layout, label_column, id_column = options.layout, options.label_column, options.id_column
    path = Path(path)
    fmt = detect_format(path, options.format)
    rows = read_rows(path, fmt, options.encoding)
    first = next(rows, None)
    if first is None:
        raise file_error(path, None, "no rows")
    if fmt == "jsonl":
        columns = list(first[1].keys())
        pending = [first]
    else:
        columns = [c.strip() for c in first[1]]
        pending = []

    if layout is None:
        for name, (c, q, prefix) in _LAYOUTS.items():
            if c in columns and q in columns and f"{prefix}0" in columns:
                layout = name
                break
        else:
            raise file_error(
                path, 1,
                f"cannot tell the multiple-choice layout from columns {columns}: expected SWAG "
                "(sent1, sent2, ending0..) or Cosmos QA (context, question, answer0..)",
            )
    if layout not in _LAYOUTS:
        raise ValueError(f"layout must be one of {sorted(_LAYOUTS)}, got {layout!r}")
    c_col, q_col, prefix = _LAYOUTS[layout]
    for col in (c_col, q_col, f"{prefix}0"):
        if col not in columns:
            raise file_error(path, 1, f"missing column {col!r} for the {layout} layout; columns are {columns}")
    ending_cols = []
    k = 0
    while f"{prefix}{k}" in columns:
        ending_cols.append(f"{prefix}{k}")
        k += 1
    numbered = sorted(int(c[len(prefix):]) for c in columns if c.startswith(prefix) and c[len(prefix):].isdigit())
    gaps = [f"{prefix}{i}" for i in range(max(numbered, default=-1) + 1) if i not in numbered]
    if gaps:  # reading up to the gap would silently drop the choices after it
        raise file_error(path, 1, f"missing choice column(s) {', '.join(gaps)}: the file has "
                                  f"{', '.join(f'{prefix}{i}' for i in numbered)}; every example needs "
                                  f"{prefix}0..{prefix}{max(numbered)}")
    if len(ending_cols) < 2:
        raise file_error(path, 1, f"need at least two {prefix}N columns, found {ending_cols}")
    if id_column is None:
        id_column = next((c for c in ("id", "video-id", "fold-ind") if c in columns), None)
    has_label = label_column in columns

    ids: list[str] = []
    contexts: list[str] = []
    questions: list[str] = []
    endings: list[list[str]] = []
    labels: list[int | None] = []

    for n, (lineno, row) in enumerate(itertools.chain(pending, rows)):
        if fmt != "jsonl":
            if len(row) != len(columns):
                raise file_error(path, lineno, f"expected {len(columns)} fields, found {len(row)}")
            row = dict(zip(columns, row))
        else:
            for col in (c_col, q_col, *ending_cols):
                if col not in row:
                    raise file_error(path, lineno, f"missing column {col!r}")
        context = row[c_col]
        question = row[q_col]
        if not isinstance(context, str) or not isinstance(question, str):
            raise file_error(path, lineno, f"{c_col!r} and {q_col!r} must be strings")
        if not context.strip() and not question.strip():
            raise file_error(path, lineno, f"empty {c_col!r} and {q_col!r}")
        ends = []
        for col in ending_cols:
            e = row[col]
            if not isinstance(e, str) or not e.strip():
                raise file_error(path, lineno, f"empty or non-string {col!r}")
            ends.append(e)
        label: int | None = None
        if has_label and label_column in row:
            raw = row[label_column]
            s = label_to_str(raw) if raw is not None else ""
            if s not in ("", "-1"):
                if not is_int_string(s) or not 0 <= int(s) < len(ends):
                    raise file_error(path, lineno, f"bad label {raw!r}: expected an integer in 0..{len(ends) - 1}")
                label = int(s)
        rid = row.get(id_column) if id_column else None
        ids.append(str(rid) if rid is not None else str(n))
        contexts.append(context)
        questions.append(question)
        endings.append(ends)
        labels.append(label)
    if not contexts:
        raise file_error(path, None, "no rows")
    return MultipleChoiceExamples(ids=ids, contexts=contexts, questions=questions, endings=endings,
                                  labels=labels, layout=layout, source=str(path))


def featurize_multiple_choice(
    examples: MultipleChoiceExamples,
    tokenizer: Tokenizer,
    max_length: int = 128,
) -> Features:
    """Build ``(n, num_choices, max_length)`` inputs from pairs ``(context, question + " " + ending)``.

    The context is truncated first (``truncation="only_first"``); a row where that cannot reach
    ``max_length`` (question + ending alone too long) falls back to ``"longest_first"``.
    """
    import torch

    n_choices = examples.num_choices
    for i, ends in enumerate(examples.endings):
        if len(ends) != n_choices:
            raise ValueError(f"row {i} has {len(ends)} endings, expected {n_choices}")
    firsts: list[str] = []
    seconds: list[str] = []
    for ctx, q, ends in zip(examples.contexts, examples.questions, examples.endings):
        for ending in ends:
            firsts.append(ctx)
            seconds.append(f"{q} {ending}".strip() if q.strip() else ending)

    def encode(a: list[str], b: list[str], strategy: str) -> dict[str, Any]:
        return model_inputs(tokenizer(a, b, padding="max_length", truncation=strategy,
                                       max_length=max_length, return_tensors="pt"),
                             getattr(tokenizer, "pad_token_id", None))

    def fits(enc: dict[str, Any]) -> bool:
        return int(enc["input_ids"].shape[-1]) <= max_length

    try:
        enc = encode(firsts, seconds, "only_first")
        ok = fits(enc)
    except Exception:  # tokenizers raise when only_first cannot truncate enough
        ok = False
    if not ok:
        parts = []
        for start in range(0, len(firsts), n_choices):
            a, b = firsts[start:start + n_choices], seconds[start:start + n_choices]
            try:
                piece = encode(a, b, "only_first")
                if not fits(piece):
                    raise ValueError
            except Exception:
                piece = encode(a, b, "longest_first")
            parts.append(piece)
        enc = {k: torch.cat([p[k] for p in parts]) for k in parts[0]}
    n = len(examples.contexts)
    feats = Features({k: v.reshape(n, n_choices, -1) for k, v in enc.items()},
                     meta={"ids": list(examples.ids)})
    if examples.labels and all(lab is not None for lab in examples.labels):
        feats["labels"] = torch.tensor(examples.labels, dtype=torch.long)
    return feats


# --------------------------------------------------------------------------------------------------
# the family
# --------------------------------------------------------------------------------------------------


class MultipleChoice(TaskFamily):
    name = "multiple_choice"
    aliases = {"mc": {}, "swag": {}, "cosmosqa": {}}
    model_class_name = "FNetForMultipleChoice"
    options = MultipleChoiceReaderOptions
    examples_type = MultipleChoiceExamples

    def read(self, path: Any, options: MultipleChoiceReaderOptions) -> MultipleChoiceExamples:
        return read_multiple_choice(path, options)

    def featurize(self, examples: MultipleChoiceExamples, tokenizer: Tokenizer, max_length: int = 128, *,
                  stride: int = 128, **options: Any) -> Features:
        del stride  # only question answering splits inputs into windows
        return featurize_multiple_choice(examples, tokenizer, max_length, **options)

    def best_metric(self, problem_type: str | None) -> str:
        del problem_type
        return "eval_accuracy"

    def metrics(self, predictions: Any, references: Any, **options: Any) -> dict[str, Any]:
        """Logits ``(b, c)`` or choice ids: ``accuracy``."""
        del options
        return {"accuracy": M.accuracy(predictions, references)}

    def score(self, examples: MultipleChoiceExamples, features: Features, outputs: dict[str, np.ndarray],
              label_names: list[str], *, problem_type: str | None = None, max_answer_length: int = 30
              ) -> tuple[dict[str, float], list[dict]]:
        del examples, label_names, problem_type, max_answer_length  # choices are indices
        probs = softmax(outputs["logits"])  # (b, c)
        pred = probs.argmax(-1)
        records: list[dict[str, Any]] = [{"choice": int(p), "probabilities": [float(q) for q in row]}
                                         for p, row in zip(pred, probs)]
        gold = features.get("labels")
        scores = self.metrics(pred, gold.numpy()) if gold is not None else {}
        return eval_scores(scores), records

    def add_spread(self, record: dict[str, Any], mean: np.ndarray, std: np.ndarray, label_names: list[str]) -> None:
        del label_names  # choices are indices
        record["probabilities"] = [float(p) for p in mean]
        record["std"] = [float(s) for s in std]
