"""Readers for fine-tuning task data: classification, CoNLL token tagging, SQuAD QA, multiple choice.

Every reader validates as it goes and raises :class:`ValueError` naming the file, the line (or, for
SQuAD's single JSON document, the JSON path of the offending entry) and what is wrong, so that a bad
row in a 60k-line file can be found and fixed without a debugger.

Nothing here imports torch; featurization lives in :mod:`fnet.data.features` and :mod:`fnet.data.qa`.
"""

from __future__ import annotations

import csv
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

__all__ = [
    "ClassificationExamples",
    "TokenClassificationExamples",
    "QAExample",
    "QAExamples",
    "MultipleChoiceExamples",
    "read_classification",
    "read_conll",
    "read_squad",
    "read_multiple_choice",
    "detect_format",
]

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


# --------------------------------------------------------------------------------------------------
# result types
# --------------------------------------------------------------------------------------------------


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
class TokenClassificationExamples:
    """Sentences as word lists with one tag per word; ``label_names`` is the tag vocabulary."""

    sentences: list[list[str]]
    tags: list[list[str]]
    label_names: list[str]
    source: str = ""

    def __len__(self) -> int:
        return len(self.sentences)

    @property
    def label2id(self) -> dict[str, int]:
        return {name: i for i, name in enumerate(self.label_names)}

    @property
    def id2label(self) -> dict[int, str]:
        return dict(enumerate(self.label_names))


@dataclass
class QAExample:
    """One SQuAD question. ``answers`` is a list of ``{"text": str, "answer_start": int}`` whose
    spans have been checked against ``context``; it is empty for unanswerable (v2) questions."""

    id: str
    question: str
    context: str
    answers: list[dict[str, Any]]
    is_impossible: bool = False
    title: str = ""


@dataclass
class QAExamples:
    examples: list[QAExample]
    version_2_with_negative: bool
    source: str = ""
    # answers whose offsets were repaired (on_mismatch="fix") or dropped (on_mismatch="skip")
    fixed: int = 0
    skipped: int = 0
    problems: list[str] = field(default_factory=list)  # one line per repaired or dropped answer

    def __len__(self) -> int:
        return len(self.examples)

    def __iter__(self) -> Iterator[QAExample]:
        return iter(self.examples)

    def __getitem__(self, i: int) -> QAExample:
        return self.examples[i]


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


# --------------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------------


def _err(path: Any, line: int | str | None, message: str) -> ValueError:
    where = f"{path}" if line is None else (f"{path}:{line}" if isinstance(line, int) else f"{path} at {line}")
    return ValueError(f"{where}: {message}")


def detect_format(path: str | Path, format: str | None = None) -> str:
    """Return ``"csv"``, ``"tsv"`` or ``"jsonl"`` from an explicit ``format`` or the file extension."""
    if format is not None:
        fmt = format.lower().lstrip(".")
    else:
        suffixes = [s.lower() for s in Path(path).suffixes if s.lower() not in (".gz",)]
        fmt = suffixes[-1].lstrip(".") if suffixes else ""
    aliases = {"csv": "csv", "tsv": "tsv", "tab": "tsv", "txt": "tsv", "jsonl": "jsonl",
               "json": "jsonl", "ndjson": "jsonl", "jsonlines": "jsonl"}
    if fmt not in aliases:
        raise ValueError(
            f"{path}: cannot tell the file format from {fmt!r}; pass format='csv', 'tsv' or 'jsonl'"
        )
    return aliases[fmt]


def _read_rows(path: Path, fmt: str, encoding: str) -> Iterator[tuple[int, Any]]:
    """Yield ``(line_number, row)``; rows are lists of strings (csv/tsv) or dicts (jsonl).

    Line numbers are 1-based physical line numbers of the row's first line (CSV fields may span
    lines when quoted)."""
    if fmt == "jsonl":
        with open(path, encoding=encoding) as f:
            for lineno, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise _err(path, lineno, f"invalid JSON ({exc.msg} at column {exc.colno})") from None
                if not isinstance(obj, dict):
                    raise _err(path, lineno, f"expected a JSON object per line, got {type(obj).__name__}")
                yield lineno, obj
        return
    with open(path, encoding=encoding, newline="") as f:
        if fmt == "tsv":
            # TSV files in the wild (GLUE, AG News) are not quoted: a quote is just a character.
            reader = csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        else:
            reader = csv.reader(f)
        start = 1
        try:
            for row in reader:
                lineno = start
                start = reader.line_num + 1
                if not row or all(not cell.strip() for cell in row):
                    continue
                yield lineno, row
        except csv.Error as exc:
            raise _err(path, start, f"malformed CSV ({exc})") from None


def _is_int_string(s: str) -> bool:
    return re.fullmatch(r"[+-]?\d+", s.strip()) is not None


def _parse_float(s: Any) -> float | None:
    if isinstance(s, bool):
        return None
    if isinstance(s, (int, float)):
        return float(s)
    try:
        v = float(str(s).strip())
    except ValueError:
        return None
    return v


def _label_to_str(value: Any) -> str:
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def _sort_label_names(names: set[str]) -> list[str]:
    """Integer-looking labels sort numerically, everything else lexicographically (stable across
    splits and runs, independent of row order)."""
    if names and all(_is_int_string(n) for n in names):
        return sorted(names, key=lambda n: int(n))
    return sorted(names)


# --------------------------------------------------------------------------------------------------
# classification
# --------------------------------------------------------------------------------------------------


def read_classification(
    path: str | Path,
    *,
    format: str | None = None,
    text_column: str | int | None = None,
    text_pair_column: str | int | None = None,
    label_column: str | int | None = None,
    header: bool | None = None,
    problem_type: str | None = None,
    label_names: Sequence[str] | None = None,
    label_delimiter: str = "|",
    skip_empty: bool = False,
    encoding: str = "utf-8",
) -> ClassificationExamples:
    """Read a CSV, TSV or JSON-lines classification file.

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
    path = Path(path)
    fmt = detect_format(path, format)
    if problem_type is not None and problem_type not in PROBLEM_TYPES:
        raise ValueError(f"problem_type must be one of {PROBLEM_TYPES}, got {problem_type!r}")
    rows = _read_rows(path, fmt, encoding)

    raw_texts: list[str] = []
    raw_pairs: list[str] = []
    raw_labels: list[tuple[int, Any]] = []
    skipped = 0

    names_given = [c for c in (text_column, text_pair_column, label_column) if isinstance(c, str)]
    by_index = any(isinstance(c, int) for c in (text_column, text_pair_column, label_column))
    first = next(rows, None)
    if first is None:
        raise _err(path, None, "no rows")

    columns: list[str] | None = None
    if fmt == "jsonl":
        columns = list(first[1].keys())
        pending = [first]
    else:
        first_line, first_row = first
        if header is None:
            cells = {c.strip().lower() for c in first_row}
            known = set(_TEXT_NAMES) | set(_PAIR_FOR.values()) | set(_LABEL_NAMES)
            has_header = bool(cells & known) or bool(cells & {n.lower() for n in names_given})
        else:
            has_header = header
        if has_header:
            columns = [c.strip() for c in first_row]
            pending = []
        else:
            pending = [first]

    # resolve the columns to either names (dict rows / header) or indices (headerless rows)
    def resolve(col: str | int | None, what: str) -> str | int | None:
        if col is None:
            return None
        if isinstance(col, int):
            if columns is not None and fmt != "jsonl":
                if not -len(columns) <= col < len(columns):
                    raise _err(path, 1, f"{what} index {col} out of range for {len(columns)} columns")
                return col % len(columns)
            if fmt == "jsonl":
                raise ValueError(f"{path}: JSON lines need column names, got {what}={col}")
            return col
        if columns is None:
            raise _err(path, 1, f"{what}={col!r} given by name but the file has no header row")
        lowered = {c.lower(): c for c in columns}
        if col not in columns and col.lower() not in lowered:
            raise _err(path, 1, f"no column {col!r} for {what}; columns are {columns}")
        name = col if col in columns else lowered[col.lower()]
        return columns.index(name) if fmt != "jsonl" else name

    if columns is not None:
        lowered = [c.lower() for c in columns]

        def find(candidates: Sequence[str]) -> str | None:
            for cand in candidates:
                if cand in lowered:
                    return columns[lowered.index(cand)]
            return None

        if text_column is None:
            text_column = find(_TEXT_NAMES)
            if text_column is None:
                raise _err(path, 1, f"cannot find the text column among {columns}; pass text_column=")
            if text_pair_column is None:
                partner = _PAIR_FOR.get(text_column.lower())
                text_pair_column = find([partner]) if partner else None
        if label_column is None:
            label_column = find(_LABEL_NAMES)
            if label_column is None:
                raise _err(path, 1, f"cannot find the label column among {columns}; pass label_column=")
    else:
        ncols = len(first[1])
        if text_column is None and label_column is None:
            if ncols == 2:
                text_column, label_column = 0, 1
            elif ncols == 3:
                text_column, text_pair_column, label_column = 0, 1, 2
            else:
                raise _err(
                    path, first[0],
                    f"headerless file with {ncols} columns: pass text_column=, label_column= (indices)",
                )
        elif text_column is None or label_column is None:
            raise _err(path, first[0], "headerless file: pass both text_column= and label_column= (indices)")

    t_col = resolve(text_column, "text_column")
    p_col = resolve(text_pair_column, "text_pair_column")
    l_col = resolve(label_column, "label_column")
    expected_fields = len(columns) if (columns is not None and fmt != "jsonl") else None
    if expected_fields is None and fmt != "jsonl":
        expected_fields = len(first[1])

    def rows_all() -> Iterator[tuple[int, Any]]:
        yield from pending
        yield from rows

    for lineno, row in rows_all():
        if fmt == "jsonl":
            def get(col: Any, what: str) -> Any:
                if col not in row:
                    raise _err(path, lineno, f"missing column {col!r} ({what})")
                return row[col]
        else:
            if len(row) != expected_fields:
                raise _err(path, lineno, f"expected {expected_fields} fields, found {len(row)}")

            def get(col: Any, what: str) -> Any:
                return row[col]

        text = get(t_col, "text")
        pair = get(p_col, "text pair") if p_col is not None else None
        if not isinstance(text, str) or not text.strip() or (
            p_col is not None and (not isinstance(pair, str) or not pair.strip())
        ):
            bad = text_column if not isinstance(text, str) or not text.strip() else text_pair_column
            if skip_empty and (isinstance(text, str) or text is None) and (isinstance(pair, str) or pair is None):
                skipped += 1
                continue
            raise _err(path, lineno, f"empty or non-string text in column {bad!r} (skip_empty=True drops such rows)")
        raw_texts.append(text)
        if p_col is not None:
            raw_pairs.append(pair)
        label = get(l_col, "label")
        if label is None or (isinstance(label, str) and not label.strip()):
            raise _err(path, lineno, f"empty label in column {label_column!r}")
        raw_labels.append((lineno, label))

    # ---- labels
    def split_multi(lineno: int, value: Any) -> list[str]:
        if isinstance(value, list):
            parts = [_label_to_str(v) for v in value]
        elif isinstance(value, str):
            s = value.strip()
            if s.startswith("["):
                try:
                    parsed = json.loads(s)
                except json.JSONDecodeError:
                    raise _err(path, lineno, f"label {s!r} looks like a JSON list but is not valid JSON") from None
                if not isinstance(parsed, list):
                    raise _err(path, lineno, f"label {s!r} is not a list")
                parts = [_label_to_str(v) for v in parsed]
            else:
                parts = [p.strip() for p in s.split(label_delimiter)] if label_delimiter else [s]
        else:
            parts = [_label_to_str(value)]
        if any(not p for p in parts):
            raise _err(path, lineno, f"empty label name in multi-label value {value!r}")
        return parts

    if problem_type is None:
        def looks_multi(v: Any) -> bool:
            if isinstance(v, list):
                return True
            return isinstance(v, str) and (
                v.strip().startswith("[") or (bool(label_delimiter) and label_delimiter in v)
            )

        if any(looks_multi(v) for _, v in raw_labels):
            problem_type = MULTI_LABEL
        else:
            floats = [_parse_float(v) for _, v in raw_labels]
            numeric = all(f is not None and math.isfinite(f) for f in floats)
            if numeric and any(not f.is_integer() for f in floats):  # type: ignore[union-attr]
                problem_type = REGRESSION
            else:
                problem_type = SINGLE_LABEL

    labels: list[Any] = []
    names: list[str] | None
    if problem_type == REGRESSION:
        for lineno, v in raw_labels:
            f = _parse_float(v)
            if f is None or not math.isfinite(f):
                raise _err(path, lineno, f"bad regression label {v!r}: not a finite number")
            labels.append(f)
        names = None
    elif problem_type == MULTI_LABEL:
        parsed_rows = [(lineno, split_multi(lineno, v)) for lineno, v in raw_labels]
        if label_names is not None:
            names = list(label_names)
        else:
            names = _sort_label_names({p for _, parts in parsed_rows for p in parts})
        index = {n: i for i, n in enumerate(names)}
        for lineno, parts in parsed_rows:
            hot = [0.0] * len(names)
            for p in parts:
                if p not in index:
                    raise _err(path, lineno, f"unknown label {p!r} in multi-label value (known: {names})")
                hot[index[p]] = 1.0
            labels.append(hot)
    else:
        strs: list[tuple[int, str]] = []
        for lineno, v in raw_labels:
            if isinstance(v, (list, dict)):
                raise _err(path, lineno, f"bad label {v!r} for single-label classification")
            if isinstance(v, float) and not v.is_integer():
                raise _err(path, lineno, f"bad label {v!r}: a fractional number in a classification file")
            strs.append((lineno, _label_to_str(v)))
        if label_names is not None:
            names = [str(n) for n in label_names]
        else:
            seen = {s for _, s in strs}
            if seen and all(_is_int_string(s) and int(s) >= 0 for s in seen):
                names = [str(i) for i in range(max(int(s) for s in seen) + 1)]
            else:
                names = _sort_label_names(seen)
        index = {n: i for i, n in enumerate(names)}
        for lineno, s in strs:
            key = s
            if key not in index and _is_int_string(key) and str(int(key)) in index:
                key = str(int(key))
            if key not in index:
                raise _err(path, lineno, f"unknown label {s!r} (known: {names})")
            labels.append(index[key])

    return ClassificationExamples(
        texts=raw_texts,
        pairs=raw_pairs if p_col is not None else None,
        labels=labels,
        label_names=names,
        problem_type=problem_type,
        source=str(path),
        skipped=skipped,
    )


# --------------------------------------------------------------------------------------------------
# token classification (CoNLL)
# --------------------------------------------------------------------------------------------------

_TAG_RE = re.compile(r"^(O|[BIES]-\S+)$")
_PREFIX_ORDER = {"B": 0, "I": 1, "E": 2, "S": 3}


def _sort_tags(tags: set[str]) -> list[str]:
    """``O`` first, then by entity type, ``B`` before ``I`` (before ``E``, ``S``)."""
    def key(t: str) -> tuple:
        if t == "O":
            return (0, "", 0)
        prefix, _, typ = t.partition("-")
        return (1, typ, _PREFIX_ORDER.get(prefix, 9), t)
    return sorted(tags, key=key)


def read_conll(
    path: str | Path,
    *,
    token_column: int = 0,
    tag_column: int = -1,
    label_names: Sequence[str] | None = None,
    validate_tags: bool = True,
    encoding: str = "utf-8",
) -> TokenClassificationExamples:
    """Read CoNLL-style token tagging data.

    One token per line, fields separated by whitespace or tabs, the tag in ``tag_column`` (last by
    default); a blank line ends a sentence; ``-DOCSTART-`` lines are skipped. With ``validate_tags``
    every tag must be ``O`` or ``B-``/``I-``/``E-``/``S-`` + type. ``label_names`` fixes the tag
    vocabulary (a tag outside it is an error); by default it is ``O`` then the seen tags by type.
    """
    path = Path(path)
    sentences: list[list[str]] = []
    all_tags: list[list[str]] = []
    words: list[str] = []
    tags: list[str] = []
    known = set(label_names) if label_names is not None else None
    ncols: int | None = None

    def flush() -> None:
        nonlocal words, tags
        if words:
            sentences.append(words)
            all_tags.append(tags)
        words, tags = [], []

    with open(path, encoding=encoding) as f:
        for lineno, raw in enumerate(f, 1):
            line = raw.rstrip("\n").rstrip("\r")
            if not line.strip():
                flush()
                continue
            fields = line.split("\t") if "\t" in line else line.split()
            fields = [x.strip() for x in fields]
            if fields[0].startswith("-DOCSTART-"):
                flush()
                continue
            if len(fields) < 2:
                raise _err(path, lineno, f"expected a token and a tag, found {len(fields)} field(s): {line!r}")
            if ncols is None:
                ncols = len(fields)
            elif len(fields) != ncols:
                raise _err(path, lineno, f"expected {ncols} fields like the lines before, found {len(fields)}")
            try:
                token, tag = fields[token_column], fields[tag_column]
            except IndexError:
                raise _err(path, lineno, f"no column {tag_column} / {token_column} in {len(fields)} fields") from None
            if not token:
                raise _err(path, lineno, "empty token")
            if validate_tags and not _TAG_RE.match(tag):
                raise _err(path, lineno, f"bad tag {tag!r}: expected O or B-/I-/E-/S- followed by a type")
            if known is not None and tag not in known:
                raise _err(path, lineno, f"unknown tag {tag!r} (known: {sorted(known)})")
            words.append(token)
            tags.append(tag)
    flush()
    if not sentences:
        raise _err(path, None, "no sentences")
    names = list(label_names) if label_names is not None else _sort_tags({t for ts in all_tags for t in ts} | {"O"})
    return TokenClassificationExamples(sentences=sentences, tags=all_tags, label_names=names, source=str(path))


# --------------------------------------------------------------------------------------------------
# SQuAD
# --------------------------------------------------------------------------------------------------


def _nearest_occurrence(context: str, text: str, start: int, max_shift: int) -> int | None:
    best: int | None = None
    lo = max(0, start - max_shift)
    hi = min(len(context), start + max_shift + len(text))
    i = context.find(text, lo, hi)
    while i != -1:
        if best is None or abs(i - start) < abs(best - start):
            best = i
        i = context.find(text, i + 1, hi)
    return best


def read_squad(
    path: str | Path,
    *,
    on_mismatch: str = "error",
    max_shift: int = 64,
    encoding: str = "utf-8",
) -> QAExamples:
    """Read SQuAD v1.1 / v2.0 JSON (``data[].paragraphs[].context, qas[]``).

    Each answer must satisfy ``context[answer_start:answer_start + len(text)] == text``. When it does
    not, ``on_mismatch`` decides:

    * ``"error"`` (default): raise, naming the file, the JSON path, the question id and both strings;
    * ``"fix"``: move ``answer_start`` to the nearest exact occurrence of the text within
      ``max_shift`` characters (the usual repair: most broken offsets in public sets are off by one or
      two characters; ``answer_start=-1``, "unknown", takes the first occurrence anywhere); raise if
      if there is none the answer is dropped as with ``"skip"``;
    * ``"skip"``: drop that answer (a question left with no answer is dropped too).

    ``QAExamples.fixed`` / ``.skipped`` count repaired / dropped answers and ``.problems`` lists each.

    The file is SQuAD v2 when any question carries ``is_impossible``.
    """
    if on_mismatch not in ("error", "fix", "skip"):
        raise ValueError(f"on_mismatch must be 'error', 'fix' or 'skip', got {on_mismatch!r}")
    path = Path(path)
    try:
        with open(path, encoding=encoding) as f:
            doc = json.load(f)
    except json.JSONDecodeError as exc:
        raise _err(path, exc.lineno, f"invalid JSON ({exc.msg} at column {exc.colno})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("data"), list):
        raise _err(path, None, "not SQuAD JSON: expected an object with a 'data' list")

    examples: list[QAExample] = []
    seen_ids: dict[str, str] = {}
    v2 = False
    fixed = skipped = 0
    problems: list[str] = []
    for ai, article in enumerate(doc["data"]):
        if not isinstance(article, dict) or not isinstance(article.get("paragraphs"), list):
            raise _err(path, f"data[{ai}]", "expected an object with a 'paragraphs' list")
        title = str(article.get("title", ""))
        for pi, para in enumerate(article["paragraphs"]):
            where_p = f"data[{ai}].paragraphs[{pi}]"
            if not isinstance(para, dict):
                raise _err(path, where_p, "expected an object")
            context = para.get("context")
            if not isinstance(context, str) or not context.strip():
                raise _err(path, where_p, "missing or empty 'context'")
            qas = para.get("qas")
            if not isinstance(qas, list):
                raise _err(path, where_p, "missing 'qas' list")
            for qi, qa in enumerate(qas):
                where = f"{where_p}.qas[{qi}]"
                if not isinstance(qa, dict):
                    raise _err(path, where, "expected an object")
                if "id" not in qa:
                    raise _err(path, where, "missing 'id'")
                qid = str(qa["id"])
                if qid in seen_ids:
                    raise _err(path, where, f"duplicate question id {qid!r} (first at {seen_ids[qid]})")
                seen_ids[qid] = where
                question = qa.get("question")
                if not isinstance(question, str) or not question.strip():
                    raise _err(path, where, f"question {qid!r}: missing or empty 'question'")
                impossible = qa.get("is_impossible", False)
                if "is_impossible" in qa:
                    v2 = True
                    if not isinstance(impossible, bool):
                        raise _err(path, where, f"question {qid!r}: 'is_impossible' must be true/false")
                answers_raw = qa.get("answers", [])
                if not isinstance(answers_raw, list):
                    raise _err(path, where, f"question {qid!r}: 'answers' must be a list")
                answers: list[dict[str, Any]] = []
                if not impossible:
                    for ni, ans in enumerate(answers_raw):
                        where_a = f"{where}.answers[{ni}]"
                        if not isinstance(ans, dict) or "text" not in ans or "answer_start" not in ans:
                            raise _err(path, where_a, f"question {qid!r}: answer needs 'text' and 'answer_start'")
                        text, start = ans["text"], ans["answer_start"]
                        if not isinstance(text, str) or not text.strip():
                            raise _err(path, where_a, f"question {qid!r}: empty answer text")
                        if isinstance(start, bool) or not isinstance(start, int) or start < -1:
                            raise _err(path, where_a, f"question {qid!r}: bad answer_start {start!r}")
                        if start == -1 or context[start:start + len(text)] != text:
                            if on_mismatch == "error":
                                raise _err(
                                    path, where_a,
                                    f"question {qid!r}: answer text {text!r} does not match the context at "
                                    f"answer_start={start} (context has {context[start:start + len(text)]!r}); "
                                    "pass on_mismatch='fix' to search nearby or 'skip' to drop it",
                                )
                            new = None
                            if on_mismatch == "fix":
                                # answer_start=-1 (some sets' "position unknown"): search everywhere
                                new = (_nearest_occurrence(context, text, 0, len(context)) if start == -1
                                       else _nearest_occurrence(context, text, start, max_shift))
                            if new is None:
                                skipped += 1
                                problems.append(
                                    f"{path} at {where_a}: question {qid!r}: dropped answer {text!r} "
                                    f"(not at answer_start={start}"
                                    + (f" nor within {max_shift} characters)" if on_mismatch == "fix" else ")")
                                )
                                continue
                            problems.append(
                                f"{path} at {where_a}: question {qid!r}: answer_start {start} -> {new}"
                            )
                            start = new
                            fixed += 1
                        answers.append({"text": text, "answer_start": start})
                    if not answers:
                        if answers_raw and on_mismatch != "error":
                            problems.append(f"{path} at {where}: question {qid!r}: dropped (no usable answer)")
                            continue
                        raise _err(path, where, f"question {qid!r}: answerable question with no answers")
                examples.append(
                    QAExample(id=qid, question=question, context=context, answers=answers,
                              is_impossible=bool(impossible), title=title)
                )
    if not examples:
        raise _err(path, None, "no questions")
    return QAExamples(examples=examples, version_2_with_negative=v2, source=str(path), fixed=fixed,
                      skipped=skipped, problems=problems)


# --------------------------------------------------------------------------------------------------
# multiple choice
# --------------------------------------------------------------------------------------------------

_LAYOUTS = {
    # name: (context column, question column, ending column prefix)
    "swag": ("sent1", "sent2", "ending"),
    "cosmosqa": ("context", "question", "answer"),
}


def read_multiple_choice(
    path: str | Path,
    *,
    format: str | None = None,
    layout: str | None = None,
    label_column: str = "label",
    id_column: str | None = None,
    encoding: str = "utf-8",
) -> MultipleChoiceExamples:
    """Read multiple-choice data from CSV or JSON lines.

    Layouts (detected from the column names unless ``layout`` is given):

    * ``"swag"``: ``sent1``, ``sent2``, ``ending0..ending{N-1}``, ``label``;
    * ``"cosmosqa"``: ``context``, ``question``, ``answer0..answer{N-1}``, ``label``.

    A missing label column (or an empty / ``-1`` label, as in unlabelled test sets) gives ``None``.
    """
    path = Path(path)
    fmt = detect_format(path, format)
    rows = _read_rows(path, fmt, encoding)
    first = next(rows, None)
    if first is None:
        raise _err(path, None, "no rows")
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
            raise _err(
                path, 1,
                f"cannot tell the multiple-choice layout from columns {columns}: expected SWAG "
                "(sent1, sent2, ending0..) or Cosmos QA (context, question, answer0..)",
            )
    if layout not in _LAYOUTS:
        raise ValueError(f"layout must be one of {sorted(_LAYOUTS)}, got {layout!r}")
    c_col, q_col, prefix = _LAYOUTS[layout]
    for col in (c_col, q_col, f"{prefix}0"):
        if col not in columns:
            raise _err(path, 1, f"missing column {col!r} for the {layout} layout; columns are {columns}")
    ending_cols = []
    k = 0
    while f"{prefix}{k}" in columns:
        ending_cols.append(f"{prefix}{k}")
        k += 1
    if len(ending_cols) < 2:
        raise _err(path, 1, f"need at least two {prefix}N columns, found {ending_cols}")
    if id_column is None:
        id_column = next((c for c in ("id", "video-id", "fold-ind") if c in columns), None)
    has_label = label_column in columns

    ids: list[str] = []
    contexts: list[str] = []
    questions: list[str] = []
    endings: list[list[str]] = []
    labels: list[int | None] = []

    def rows_all() -> Iterator[tuple[int, Any]]:
        yield from pending
        yield from rows

    for n, (lineno, row) in enumerate(rows_all()):
        if fmt != "jsonl":
            if len(row) != len(columns):
                raise _err(path, lineno, f"expected {len(columns)} fields, found {len(row)}")
            row = dict(zip(columns, row))
        else:
            for col in (c_col, q_col, *ending_cols):
                if col not in row:
                    raise _err(path, lineno, f"missing column {col!r}")
        context = row[c_col]
        question = row[q_col]
        if not isinstance(context, str) or not isinstance(question, str):
            raise _err(path, lineno, f"{c_col!r} and {q_col!r} must be strings")
        if not context.strip() and not question.strip():
            raise _err(path, lineno, f"empty {c_col!r} and {q_col!r}")
        ends = []
        for col in ending_cols:
            e = row[col]
            if not isinstance(e, str) or not e.strip():
                raise _err(path, lineno, f"empty or non-string {col!r}")
            ends.append(e)
        label: int | None = None
        if has_label and label_column in row:
            raw = row[label_column]
            s = _label_to_str(raw) if raw is not None else ""
            if s not in ("", "-1"):
                if not _is_int_string(s) or not 0 <= int(s) < len(ends):
                    raise _err(path, lineno, f"bad label {raw!r}: expected an integer in 0..{len(ends) - 1}")
                label = int(s)
        rid = row.get(id_column) if id_column else None
        ids.append(str(rid) if rid is not None else str(n))
        contexts.append(context)
        questions.append(question)
        endings.append(ends)
        labels.append(label)
    if not contexts:
        raise _err(path, None, "no rows")
    return MultipleChoiceExamples(ids=ids, contexts=contexts, questions=questions, endings=endings,
                                  labels=labels, layout=layout, source=str(path))
