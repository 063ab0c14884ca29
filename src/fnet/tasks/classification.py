"""Sequence classification: single-label, multi-label and regression, on texts or text pairs.

Reader (CSV / TSV / JSON lines) in three steps: find the columns, read the rows, encode the labels.
Featurization truncates to ``max_length``; metrics are accuracy / F1 / Matthews correlation
(single-label), micro and macro F1 (multi-label), Pearson / Spearman / MSE (regression).

Legend: b rows, k labels.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Sequence

from fnet.lazy import numpy as np  # imported on first use: the CLI reads this module for its flags

from fnet.data.features import Features, model_inputs
from fnet.data.rows import (
    detect_format,
    file_error,
    is_int_string,
    label_to_str,
    parse_float,
    read_rows,
    sort_label_names,
)
from fnet.options import option
from fnet.tasks.base import ExportHead, ReaderOptions, TaskFamily, eval_scores, format_option, sigmoid, softmax
import fnet.tasks.metrics as M

if TYPE_CHECKING:
    from fnet.data.tokenizer import Tokenizer

__all__ = ["ClassificationExamples", "ClassificationReaderOptions", "read_classification",
           "featurize_classification", "Classification", "PROBLEM_TYPES"]

SINGLE_LABEL = "single_label_classification"
MULTI_LABEL = "multi_label_classification"
REGRESSION = "regression"
PROBLEM_TYPES = (SINGLE_LABEL, MULTI_LABEL, REGRESSION)

# Column names recognised when the caller does not name the columns (first match wins).
_TEXT_NAMES = ("sentence", "text", "review", "content", "question", "premise", "sentence1", "question1")
_PAIR_FOR = {
    "sentence1": "sentence2",
    "question1": "question2",
    "premise": "hypothesis",
    "question": "sentence",
}
_LABEL_NAMES = ("label", "labels", "score", "target", "sentiment", "class", "category")


@dataclass
class ClassificationExamples:
    """Texts (and optional second texts) with labels.

    ``labels`` holds, per row: an ``int`` class id (single-label), a ``float`` (regression) or a
    multi-hot ``list[float]`` of length ``len(label_names)`` (multi-label). ``label_names[i]`` is the
    name of class id ``i``; it is ``None`` for regression.
    """

    texts: list[str]
    pairs: list[str] | None
    labels: list[Any]
    label_names: list[str] | None
    problem_type: str
    source: str = ""
    skipped: int = 0

    def __len__(self) -> int:
        return len(self.texts)

    @property
    def num_labels(self) -> int:
        return 1 if self.label_names is None else len(self.label_names)

    @property
    def label2id(self) -> dict[str, int]:
        return {name: i for i, name in enumerate(self.label_names or [])}

    @property
    def id2label(self) -> dict[int, str]:
        return dict(enumerate(self.label_names or []))


@dataclass
class ClassificationReaderOptions(ReaderOptions):
    """How to read a classification file (each CLI field is also a `fnet finetune` flag)."""

    format: str | None = format_option()
    text_column: str | int | None = option(
        None, "classification: text column name or 0-based index (default: detected)")
    text_pair_column: str | int | None = option(None, "classification: second text column, for sentence pairs")
    label_column: str | int | None = option(None, "label column name or index (default: detected)")
    problem_type: str | None = option(None, "classification: default detected from the labels",
                                      choices=PROBLEM_TYPES)
    label_delimiter: str = option("|", "multi-label: separator inside the label cell")
    skip_empty: bool = option(False, "classification: drop rows with an empty text instead of failing")
    # a header row: None detects it (its cells hold a known or the requested column name)
    header: bool | None = option(None, "whether the first row names the columns (default: detected)", cli=False)
    # the class list to map onto (e.g. the training split's); a label outside it is an error
    label_names: list[str] | None = option(None, "the class list, in id order", cli=False)
    encoding: str = option("utf-8", "text encoding of the file", cli=False)

    @classmethod
    def from_flags(cls, values: dict[str, Any]) -> dict[str, Any]:
        """Column flags that are all digits are 0-based indices (for headerless files)."""
        out = super().from_flags(values)
        for name in ("text_column", "text_pair_column", "label_column"):
            if isinstance(out.get(name), str) and out[name].isdigit():
                out[name] = int(out[name])
        return out


# --------------------------------------------------------------------------------------------------
# reading: columns -> rows -> labels
# --------------------------------------------------------------------------------------------------


@dataclass
class _Columns:
    """Where text, pair and label sit in a row: names (JSON lines) or indices (CSV / TSV)."""

    text: str | int
    pair: str | int | None
    label: str | int
    fields: int | None  # fields every CSV / TSV row must have (None for JSON lines)
    names: tuple[Any, Any, Any]  # the columns as given or detected, for error messages


def _has_header(row: list[str], names_given: list[str]) -> bool:
    cells = {c.strip().lower() for c in row}
    known = set(_TEXT_NAMES) | set(_PAIR_FOR.values()) | set(_LABEL_NAMES)
    return bool(cells & known) or bool(cells & {n.lower() for n in names_given})


def _detect_named(path: Path, columns: list[str], text: Any, pair: Any, label: Any) -> tuple[Any, Any, Any]:
    """Fill the columns not given from the known names (a text column may bring its pair partner)."""
    lowered = [c.lower() for c in columns]

    def find(candidates: Sequence[str]) -> str | None:
        return next((columns[lowered.index(c)] for c in candidates if c in lowered), None)

    if text is None:
        text = find(_TEXT_NAMES)
        if text is None:
            raise file_error(path, 1, f"cannot find the text column among {columns}; pass text_column=")
        if pair is None:
            partner = _PAIR_FOR.get(text.lower())
            pair = find([partner]) if partner else None
    if label is None:
        label = find(_LABEL_NAMES)
        if label is None:
            raise file_error(path, 1, f"cannot find the label column among {columns}; pass --label-column NAME")
    return text, pair, label


def _detect_headerless(path: Path, first: tuple[int, list[str]], text: Any, pair: Any, label: Any
                       ) -> tuple[Any, Any, Any]:
    """Headerless files: two columns are ``text, label`` (AG News), three ``text, pair, label``."""
    lineno, row = first
    if text is None and label is None:
        if len(row) == 2:
            return 0, pair, 1
        if len(row) == 3:
            return 0, 1, 2
        raise file_error(path, lineno, f"headerless file with {len(row)} columns: pass --text-column and --label-column (column numbers)")
    if text is None or label is None:
        raise file_error(path, lineno, "headerless file: pass both --text-column and --label-column (column numbers)")
    return text, pair, label


def _resolve(path: Path, fmt: str, columns: list[str] | None, col: Any, what: str) -> Any:
    """A column given by name or index -> the key into a row (name for JSON lines, index otherwise)."""
    if col is None:
        return None
    if isinstance(col, int):
        if fmt == "jsonl":
            raise ValueError(f"{path}: JSON lines need column names, got {what}={col}")
        if columns is not None:
            if not -len(columns) <= col < len(columns):
                raise file_error(path, 1, f"{what} index {col} out of range for {len(columns)} columns")
            return col % len(columns)
        return col
    if columns is None:
        raise file_error(path, 1, f"{what}={col!r} given by name but the file has no header row")
    lowered = {c.lower(): c for c in columns}
    if col not in columns and col.lower() not in lowered:
        raise file_error(path, 1, f"no column {col!r} for {what}; columns are {columns}")
    name = col if col in columns else lowered[col.lower()]
    return columns.index(name) if fmt != "jsonl" else name


def _find_columns(path: Path, fmt: str, rows: Iterator[tuple[int, Any]], options: ClassificationReaderOptions
                  ) -> tuple[_Columns, list[tuple[int, Any]]]:
    """The columns, and the rows already taken from ``rows`` that are data (not a header)."""
    text, pair, label = options.text_column, options.text_pair_column, options.label_column
    first = next(rows, None)
    if first is None:
        raise file_error(path, None, "no rows")
    names_given = [c for c in (text, pair, label) if isinstance(c, str)]
    if fmt == "jsonl":
        columns, pending = list(first[1].keys()), [first]
    elif _has_header(first[1], names_given) if options.header is None else options.header:
        columns, pending = [c.strip() for c in first[1]], []
    else:
        columns, pending = None, [first]
    if columns is not None:
        text, pair, label = _detect_named(path, columns, text, pair, label)
    else:
        text, pair, label = _detect_headerless(path, first, text, pair, label)
    fields = None if fmt == "jsonl" else (len(columns) if columns is not None else len(first[1]))
    return _Columns(text=_resolve(path, fmt, columns, text, "text_column"),
                    pair=_resolve(path, fmt, columns, pair, "text_pair_column"),
                    label=_resolve(path, fmt, columns, label, "label_column"),
                    fields=fields, names=(text, pair, label)), pending


def _cell(path: Path, lineno: int, row: Any, col: Any, what: str) -> Any:
    if isinstance(row, dict) and col not in row:
        raise file_error(path, lineno, f"missing column {col!r} ({what})")
    return row[col]


def _read_cells(path: Path, rows: Iterator[tuple[int, Any]], cols: _Columns, skip_empty: bool
                ) -> tuple[list[str], list[str], list[tuple[int, Any]], int]:
    """(texts, pairs, (line, raw label) per row, rows skipped for an empty text)."""
    texts: list[str] = []
    pairs: list[str] = []
    labels: list[tuple[int, Any]] = []
    skipped = 0
    for lineno, row in rows:
        if cols.fields is not None and len(row) != cols.fields:
            raise file_error(path, lineno, f"expected {cols.fields} fields, found {len(row)}")
        text = _cell(path, lineno, row, cols.text, "text")
        pair = _cell(path, lineno, row, cols.pair, "text pair") if cols.pair is not None else None
        text_ok = isinstance(text, str) and bool(text.strip())
        if not text_ok or (cols.pair is not None and (not isinstance(pair, str) or not pair.strip())):
            bad = cols.names[0] if not text_ok else cols.names[1]
            if skip_empty and (isinstance(text, str) or text is None) and (isinstance(pair, str) or pair is None):
                skipped += 1
                continue
            raise file_error(path, lineno, f"empty or non-string text in column {bad!r} (skip_empty=True drops such rows)")
        texts.append(text)
        if cols.pair is not None:
            pairs.append(pair)
        label = _cell(path, lineno, row, cols.label, "label")
        if label is None or (isinstance(label, str) and not label.strip()):
            raise file_error(path, lineno, f"empty label in column {cols.names[2]!r}")
        labels.append((lineno, label))
    return texts, pairs, labels, skipped


def _split_multi(path: Path, lineno: int, value: Any, delimiter: str) -> list[str]:
    """A multi-label cell -> label names: a JSON list (in the cell or as JSON), or ``a|b``."""
    if isinstance(value, list):
        parts = [label_to_str(v) for v in value]
    elif isinstance(value, str):
        s = value.strip()
        if s.startswith("["):
            try:
                parsed = json.loads(s)
            except json.JSONDecodeError:
                raise file_error(path, lineno, f"label {s!r} looks like a JSON list but is not valid JSON") from None
            if not isinstance(parsed, list):
                raise file_error(path, lineno, f"label {s!r} is not a list")
            parts = [label_to_str(v) for v in parsed]
        else:
            parts = [p.strip() for p in s.split(delimiter)] if delimiter else [s]
    else:
        parts = [label_to_str(value)]
    if any(not p for p in parts):
        raise file_error(path, lineno, f"empty label name in multi-label value {value!r}")
    return parts


def _detect_problem_type(raw: list[tuple[int, Any]], delimiter: str) -> str:
    """Lists / delimiters -> multi-label, any non-integer number -> regression, else single-label."""
    def looks_multi(v: Any) -> bool:
        return isinstance(v, list) or isinstance(v, str) and (v.strip().startswith("[") or bool(delimiter) and delimiter in v)

    if any(looks_multi(v) for _, v in raw):
        return MULTI_LABEL
    floats = [parse_float(v) for _, v in raw]
    if all(f is not None and math.isfinite(f) for f in floats) and any(not f.is_integer() for f in floats):  # type: ignore[union-attr]
        return REGRESSION
    return SINGLE_LABEL


def _regression_labels(path: Path, raw: list[tuple[int, Any]]) -> list[float]:
    labels = []
    for lineno, v in raw:
        f = parse_float(v)
        if f is None or not math.isfinite(f):
            raise file_error(path, lineno, f"bad regression label {v!r}: not a finite number")
        labels.append(f)
    return labels


def _multi_labels(path: Path, raw: list[tuple[int, Any]], names: Sequence[str] | None, delimiter: str
                  ) -> tuple[list[list[float]], list[str]]:
    parsed = [(lineno, _split_multi(path, lineno, v, delimiter)) for lineno, v in raw]
    names = list(names) if names is not None else sort_label_names({p for _, parts in parsed for p in parts})
    index = {n: i for i, n in enumerate(names)}
    labels = []
    for lineno, parts in parsed:
        hot = [0.0] * len(names)
        for p in parts:
            if p not in index:
                raise file_error(path, lineno, f"unknown label {p!r} in multi-label value (known: {names})")
            hot[index[p]] = 1.0
        labels.append(hot)
    return labels, names


def _single_labels(path: Path, raw: list[tuple[int, Any]], names: Sequence[str] | None
                   ) -> tuple[list[int], list[str]]:
    """Class ids; by default integer labels ``0..max`` map to themselves, others sort by name."""
    strs: list[tuple[int, str]] = []
    for lineno, v in raw:
        if isinstance(v, (list, dict)):
            raise file_error(path, lineno, f"bad label {v!r} for single-label classification")
        if isinstance(v, float) and not v.is_integer():
            raise file_error(path, lineno, f"bad label {v!r}: a fractional number in a classification file")
        strs.append((lineno, label_to_str(v)))
    if names is not None:
        names = [str(n) for n in names]
    else:
        seen = {s for _, s in strs}
        if seen and all(is_int_string(s) and int(s) >= 0 for s in seen):
            names = [str(i) for i in range(max(int(s) for s in seen) + 1)]
        else:
            names = sort_label_names(seen)
    index = {n: i for i, n in enumerate(names)}
    labels = []
    for lineno, s in strs:
        key = s
        if key not in index and is_int_string(key) and str(int(key)) in index:
            key = str(int(key))
        if key not in index:
            raise file_error(path, lineno, f"unknown label {s!r} (known: {names})")
        labels.append(index[key])
    return labels, names


def read_classification(path: str | Path, options: ClassificationReaderOptions | None = None,
                        **overrides: Any) -> ClassificationExamples:
    """Read a CSV, TSV or JSON-lines classification file (options: :class:`ClassificationReaderOptions`,
    or its fields as keywords).

    * ``format``: ``"csv"``, ``"tsv"`` or ``"jsonl"``; by default from the extension.
    * Columns: by name (header row / JSON keys) or by 0-based index (headerless files). When not
      given they are detected: text from ``sentence``/``text``/``review``/... (``sentence1`` +
      ``sentence2``, ``question1`` + ``question2``, ``premise`` + ``hypothesis`` make pairs), label from
      ``label``/``labels``/``score``/...; a headerless file with two columns is ``text, label``
      (AG News), with three ``text, text_pair, label``.
    * ``header``: ``None`` detects a header row (its cells contain a known or the requested column
      name); JSON lines always have names.
    * ``problem_type``: ``single_label_classification`` (int or string labels),
      ``multi_label_classification`` (``"a|b"`` with ``label_delimiter``, or a JSON list) or
      ``regression`` (float labels). ``None`` detects: lists/delimiters -> multi-label, any
      non-integer number -> regression, otherwise single-label.
    * ``label_names``: the class list to map onto (e.g. the training split's); a label outside it is
      an error. By default the sorted set of labels seen (numeric order for integer labels; integer
      labels ``0..max`` map to themselves).
    * ``skip_empty``: drop rows whose text is empty (real corpora have a few, e.g. ChnSentiCorp)
      instead of raising; ``ClassificationExamples.skipped`` counts them.
    """
    options = dataclasses.replace(options or ClassificationReaderOptions(), **overrides)
    path = Path(path)
    fmt = detect_format(path, options.format)
    if options.problem_type is not None and options.problem_type not in PROBLEM_TYPES:
        raise ValueError(f"problem_type must be one of {PROBLEM_TYPES}, got {options.problem_type!r}")
    rows = read_rows(path, fmt, options.encoding)
    cols, pending = _find_columns(path, fmt, rows, options)
    texts, pairs, raw, skipped = _read_cells(path, itertools.chain(pending, rows), cols, options.skip_empty)
    problem_type = options.problem_type or _detect_problem_type(raw, options.label_delimiter)
    names: list[str] | None
    if problem_type == REGRESSION:
        labels, names = _regression_labels(path, raw), None
    elif problem_type == MULTI_LABEL:
        labels, names = _multi_labels(path, raw, options.label_names, options.label_delimiter)
    else:
        labels, names = _single_labels(path, raw, options.label_names)
    return ClassificationExamples(texts=texts, pairs=pairs if cols.pair is not None else None, labels=labels,
                                  label_names=names, problem_type=problem_type, source=str(path), skipped=skipped)


# --------------------------------------------------------------------------------------------------
# featurization
# --------------------------------------------------------------------------------------------------


def featurize_classification(
    examples: ClassificationExamples,
    tokenizer: Tokenizer,
    max_length: int = 128,
    *,
    padding: str | bool = "max_length",
) -> Features:
    """Tokenize ``texts`` (with ``pairs``), truncating to ``max_length``; ``labels`` is ``long`` for
    single-label and ``float`` for regression (shape ``(b,)``) and multi-label (``(b, k)``)."""
    import torch

    enc = tokenizer(
        list(examples.texts),
        list(examples.pairs) if examples.pairs is not None else None,
        padding=padding,
        truncation=True,
        max_length=max_length,
        return_tensors="pt",
    )
    feats = Features(model_inputs(enc, getattr(tokenizer, "pad_token_id", None)),
                     meta={"problem_type": examples.problem_type, "label_names": examples.label_names})
    if examples.labels:
        dtype = torch.float32 if examples.problem_type in (REGRESSION, MULTI_LABEL) else torch.long
        feats["labels"] = torch.tensor(examples.labels, dtype=dtype)
    return feats


# --------------------------------------------------------------------------------------------------
# the family
# --------------------------------------------------------------------------------------------------


def classification_metrics(predictions: Any, references: Any, *, problem_type: str = SINGLE_LABEL,
                           num_labels: int | None = None, **options: Any) -> dict[str, Any]:
    """Single-label: ``predictions`` are logits or class ids; ``accuracy``, ``f1`` (binary F1 of class
    1 with two classes, macro F1 otherwise), ``f1_macro``, ``matthews_correlation``. Regression:
    ``pearson``, ``spearman``, ``mse``. Multi-label: :func:`fnet.tasks.metrics.multi_label_scores`
    (``threshold`` option: logits > 0 by default; 0/1 predictions work as is)."""
    if problem_type == REGRESSION:
        x, y = M.as_floats(predictions), M.as_floats(references)
        return {"pearson": M.pearson(x, y), "spearman": M.spearman(x, y), "mse": float(np.mean((x - y) ** 2))}
    if problem_type == MULTI_LABEL:
        return M.multi_label_scores(predictions, references, **options)
    p, r = M.paired_labels(predictions, references)
    k = num_labels
    if k is None:
        shape = np.shape(predictions)
        k = shape[-1] if len(shape) == 2 else len(np.unique(np.concatenate([p, r])))
    out = {"accuracy": M.accuracy(p, r), "f1_macro": M.f1_score(p, r, average="macro"),
           "matthews_correlation": M.matthews_corrcoef(p, r)}
    out["f1"] = M.f1_score(p, r, average="binary") if k <= 2 else out["f1_macro"]
    return out


class Classification(TaskFamily):
    name = "classification"
    aliases = {
        "sequence_classification": {},
        "text_classification": {},
        "regression": {"problem_type": REGRESSION},
        "multi_label": {"problem_type": MULTI_LABEL},
        "multi_label_classification": {"problem_type": MULTI_LABEL},
    }
    model_class_name = "FNetForSequenceClassification"
    options = ClassificationReaderOptions
    examples_type = ClassificationExamples
    export = ExportHead("sequence-classification", ("logits",))
    text_input = True

    def read(self, path: Any, options: ClassificationReaderOptions) -> ClassificationExamples:
        return read_classification(path, options)

    def featurize(self, examples: ClassificationExamples, tokenizer: Tokenizer, max_length: int = 128, *,
                  stride: int = 128, **options: Any) -> Features:
        del stride  # only question answering splits inputs into windows
        return featurize_classification(examples, tokenizer, max_length, **options)

    def examples_from_texts(self, texts: Sequence[str], label_names: list[str]) -> ClassificationExamples:
        return ClassificationExamples(texts=list(texts), pairs=None, labels=[], label_names=label_names,
                                      problem_type=SINGLE_LABEL)

    def label_info(self, examples: ClassificationExamples) -> tuple[dict[str, Any], list[str]]:
        if examples.problem_type == REGRESSION:
            return {"num_labels": 1, "problem_type": REGRESSION}, ["score"]
        names = list(examples.label_names or [])
        return {"id2label": dict(enumerate(names)), "problem_type": examples.problem_type}, names

    def inherited_options(self, label_names: list[str] | None, problem_type: str | None) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if label_names and problem_type != REGRESSION:
            out["label_names"] = label_names
        if problem_type:
            out["problem_type"] = problem_type
        return out

    def best_metric(self, problem_type: str | None) -> str:
        return {REGRESSION: "eval_pearson", MULTI_LABEL: "eval_f1_micro"}.get(problem_type or "", "eval_accuracy")

    def metrics(self, predictions: Any, references: Any, **options: Any) -> dict[str, Any]:
        return classification_metrics(predictions, references, **options)

    def probabilities(self, logits: np.ndarray, problem_type: str | None) -> np.ndarray:
        return sigmoid(logits) if problem_type == MULTI_LABEL else softmax(logits)

    def score(self, examples: ClassificationExamples, features: Features, outputs: dict[str, np.ndarray],
              label_names: list[str], *, problem_type: str | None = None, max_answer_length: int = 30
              ) -> tuple[dict[str, float], list[dict]]:
        del max_answer_length  # only question answering decodes spans
        logits = outputs["logits"]  # (b, k)
        gold = features.get("labels")
        gold = gold.numpy() if gold is not None else None
        if problem_type == REGRESSION:
            pred = logits[:, 0]
            records: list[dict[str, Any]] = [{"prediction": float(p)} for p in pred]
        else:
            probs = self.probabilities(logits, problem_type)
            if problem_type == MULTI_LABEL:
                pred = (probs >= 0.5).astype(int)
                gold = gold.astype(int) if gold is not None else None
                records = [{"labels": [label_names[j] for j in np.nonzero(row)[0]],
                            "probabilities": {label_names[j]: float(p) for j, p in enumerate(prow)}}
                           for row, prow in zip(pred, probs)]
            else:
                pred = probs.argmax(-1)
                records = [{"label": label_names[int(p)], "probabilities": {label_names[j]: float(q) for j, q in enumerate(row)}}
                           for p, row in zip(pred, probs)]
        scores = (classification_metrics(pred, gold, problem_type=problem_type or SINGLE_LABEL,
                                          num_labels=len(label_names)) if gold is not None else {})
        for record, text in zip(records, examples.texts):
            record["text"] = text
        return eval_scores(scores), records

    def add_spread(self, record: dict[str, Any], mean: np.ndarray, std: np.ndarray, label_names: list[str]) -> None:
        record["probabilities"] = {label_names[j]: float(mean[j]) for j in range(mean.shape[-1])}
        record["std"] = {label_names[j]: float(std[j]) for j in range(std.shape[-1])}
