"""What a text goes through before SentencePiece sees it (the ALBERT/FNet preprocessing).

1. ``remove_space``: runs of whitespace (``str.isspace``) collapse to one space and the text is stripped;
2. a pair of backticks and a pair of apostrophes (LaTeX-style quotes) each become ``"``;
3. ``keep_accents=False``: NFKD decomposition, then combining marks are dropped;
4. ``do_lower_case``: ``str.lower()``.

:func:`normalize_aligned` does the same and also returns, for every output character, the span of
original characters it came from (what offsets are mapped through). :func:`split_special_tokens` cuts
special tokens written in a text out before any of this.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

__all__ = ["normalize", "normalize_aligned", "split_special_tokens", "clean_up_tokenization"]


def normalize(text: str, remove_space: bool, keep_accents: bool, do_lower_case: bool) -> str:
    """The string SentencePiece sees for ``text`` (whitespace, quotes, accents, case)."""
    if remove_space:
        text = " ".join(text.split())
    text = text.replace("``", '"').replace("''", '"')
    if not keep_accents:
        text = unicodedata.normalize("NFKD", text)
        text = "".join(c for c in text if not unicodedata.combining(c))
    if do_lower_case:
        text = text.lower()
    return text


def normalize_aligned(text: str, remove_space: bool, keep_accents: bool, do_lower_case: bool,
                      base: int = 0) -> tuple[str, Any, Any]:
    """``normalize`` that also returns, per output character, its original span ``[starts[k], ends[k])``.

    The spans are shifted by ``base`` (where ``text`` starts in the string offsets refer to); they come
    back as ``range`` objects when the alignment is a shifted identity (the common, fast case).
    """
    chars: Any = []
    starts: Any = []
    ends: Any = []
    stripped = text.strip() if remove_space else text
    if not remove_space or " ".join(stripped.split()) == stripped:
        # only leading/trailing whitespace goes: the alignment is a shifted identity
        lead = text.index(stripped) if stripped else 0
        chars = stripped
        starts = range(lead, lead + len(stripped))
        ends = range(lead + 1, lead + len(stripped) + 1)
    else:
        prev_end = None
        for m in re.finditer(r"\S+", text):
            if prev_end is not None:
                chars.append(" ")
                starts.append(prev_end)
                ends.append(m.start())
            for k in range(m.start(), m.end()):
                chars.append(text[k])
                starts.append(k)
                ends.append(k + 1)
            prev_end = m.end()
    # `` and '' -> "
    joined = chars if isinstance(chars, str) else "".join(chars)
    if "``" in joined or "''" in joined:
        c2, s2, e2 = [], [], []
        k = 0
        while k < len(chars):
            if k + 1 < len(chars) and chars[k] == chars[k + 1] and chars[k] in "`'":
                c2.append('"')
                s2.append(starts[k])
                e2.append(ends[k + 1])
                k += 2
            else:
                c2.append(chars[k])
                s2.append(starts[k])
                e2.append(ends[k])
                k += 1
        chars, starts, ends = c2, s2, e2
    if not keep_accents:
        c2, s2, e2 = [], [], []
        for c, s, e in zip(chars, starts, ends):
            for d in unicodedata.normalize("NFKD", c):
                if not unicodedata.combining(d):
                    c2.append(d)
                    s2.append(s)
                    e2.append(e)
        chars, starts, ends = c2, s2, e2
    out = "".join(chars)
    if do_lower_case:
        lowered = out.lower()
        if len(lowered) != len(out) and not isinstance(starts, range):
            s2, e2 = [], []
            for c, s, e in zip(chars, starts, ends):
                n = len(c.lower())
                s2.extend([s] * n)
                e2.extend([e] * n)
            starts, ends = s2, e2
        out = lowered
    if base:
        if isinstance(starts, range):
            starts = range(starts.start + base, starts.stop + base)
            ends = range(ends.start + base, ends.stop + base)
        else:
            starts = [s + base for s in starts]
            ends = [e + base for e in ends]
    return out, starts, ends


def split_special_tokens(text: str, special_re: re.Pattern, lstrip_token: str | None,
                         base: int = 0) -> list[tuple[str, Any, int, int]]:
    """Cut ``text`` into ("text", str, start, end) and ("special", token, start, end) parts.

    ``special_re`` matches the special tokens; ``lstrip_token`` (FNet's ``[MASK]``) also takes the
    whitespace to its left.
    """
    parts: list[tuple[str, Any, int, int]] = []
    pos = 0
    for m in special_re.finditer(text):
        token = m.group(0)
        start = m.start()
        seg_end = start
        if token == lstrip_token:
            while seg_end > pos and text[seg_end - 1].isspace():
                seg_end -= 1
        if seg_end > pos:
            parts.append(("text", text[pos:seg_end], base + pos, base + seg_end))
        parts.append(("special", token, base + start, base + m.end()))
        pos = m.end()
    if pos < len(text) or not parts:
        parts.append(("text", text[pos:], base + pos, base + len(text)))
    return parts


def clean_up_tokenization(text: str) -> str:
    """Remove the spaces that decoding leaves before punctuation and English contractions."""
    return (
        text.replace(" .", ".")
        .replace(" ?", "?")
        .replace(" !", "!")
        .replace(" ,", ",")
        .replace(" ' ", "'")
        .replace(" n't", "n't")
        .replace(" 'm", "'m")
        .replace(" 's", "'s")
        .replace(" 've", "'ve")
        .replace(" 're", "'re")
    )
