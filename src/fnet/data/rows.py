"""Rows of task data files: the file format, the rows of a CSV / TSV / JSON-lines file with their
line numbers, and the label-string helpers that the task readers share.

Every error names the file and the line (or, for a single JSON document, the JSON path of the
offending entry), so that a bad row in a 60k-line file can be found without a debugger.
Nothing here imports torch.
"""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path
from typing import Any, Iterator

__all__ = ["detect_format", "read_rows", "file_error", "is_int_string", "parse_float", "label_to_str",
           "sort_label_names"]


def file_error(path: Any, line: int | str | None, message: str) -> ValueError:
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
            f"{path}: cannot tell the file format from {fmt!r}; pass --format csv, tsv or jsonl"
        )
    return aliases[fmt]


def read_rows(path: Path, fmt: str, encoding: str) -> Iterator[tuple[int, Any]]:
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
                    raise file_error(path, lineno, f"invalid JSON ({exc.msg} at column {exc.colno})") from None
                if not isinstance(obj, dict):
                    raise file_error(path, lineno, f"expected a JSON object per line, got {type(obj).__name__}")
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
            raise file_error(path, start, f"malformed CSV ({exc})") from None


def is_int_string(s: str) -> bool:
    return re.fullmatch(r"[+-]?\d+", s.strip()) is not None


def parse_float(s: Any) -> float | None:
    if isinstance(s, bool):
        return None
    if isinstance(s, (int, float)):
        return float(s)
    try:
        v = float(str(s).strip())
    except ValueError:
        return None
    return v


def label_to_str(value: Any) -> str:
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def sort_label_names(names: set[str]) -> list[str]:
    """Integer-looking labels sort numerically, everything else lexicographically (stable across
    splits and runs, independent of row order)."""
    if names and all(is_int_string(n) for n in names):
        return sorted(names, key=lambda n: int(n))
    return sorted(names)
