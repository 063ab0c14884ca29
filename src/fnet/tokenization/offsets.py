"""Offsets: SentencePiece's piece spans into the normalized string -> character spans into the original.

``normalize_aligned`` (normalization.py) gives, for every normalized character, the span of original
characters it came from; the functions here map each piece's span through that alignment. Rules (as
transformers' fast tokenizers do): the whitespace that a ``▁`` stands for is not part of a piece's span;
a piece that is only ``▁`` gets the span of the character that follows it.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["SPIECE_UNDERLINE", "map_offsets", "map_one", "digit_comma_offsets"]

SPIECE_UNDERLINE = "\u2581"
# whitespace other than " " (tabs, newlines, "\x1f", ...): the shortcut in map_offsets assumes none
_OTHER_SPACE = re.compile(r"[^\S ]")


def map_offsets(pieces: list[str], sp_offsets: list[tuple[int, int]], pre: str, align: tuple[Any, Any]
                ) -> list[tuple[int, int]]:
    """Spans of ``pieces`` in the original text; ``sp_offsets`` are SentencePiece's spans into ``pre``."""
    starts, ends = align
    n = len(starts)
    if n == 0:
        return [(0, 0)] * len(pieces)
    out: list[tuple[int, int]] = []
    append = out.append
    if isinstance(starts, range) and n == len(pre):
        # identity alignment (shifted): the spans are SentencePiece's own, moved by the shift
        shift = starts.start
        if "  " not in pre and pre[:1] != " " and _OTHER_SPACE.search(pre) is None:
            # single spaces only: a leading "▁" covers at most one space
            return [
                (ps + shift + (pre[ps] == " " and piece[0] == SPIECE_UNDERLINE), pe + shift)
                if pe - ps > 1 and piece != SPIECE_UNDERLINE and ps >= 0 and pe <= n
                else (ps + shift, pe + shift)
                if pe - ps == 1 and piece[0] != SPIECE_UNDERLINE
                else map_one(piece, ps, pe, pre, starts, ends)
                for piece, (ps, pe) in zip(pieces, sp_offsets)
            ]
        for piece, (ps, pe) in zip(pieces, sp_offsets):
            if pe > ps >= 0 and pe <= n and piece != SPIECE_UNDERLINE:
                if piece[0] == SPIECE_UNDERLINE:
                    while ps < pe - 1 and pre[ps].isspace():
                        ps += 1
                append((ps + shift, pe + shift))
            else:
                append(map_one(piece, ps, pe, pre, starts, ends))
        return out
    for piece, (ps, pe) in zip(pieces, sp_offsets):
        append(map_one(piece, ps, pe, pre, starts, ends))
    return out


def map_one(piece: str, ps: int, pe: int, pre: str, starts: Any, ends: Any) -> tuple[int, int]:
    """One piece's span (see ``map_offsets``); ``starts``/``ends`` are not empty."""
    n = len(starts)
    ps = min(max(ps, 0), n)
    if piece == SPIECE_UNDERLINE:
        # a lone "▁" gets the span of the character that follows it (as transformers does)
        q = ps
        while q < len(pre) and pre[q].isspace():
            q += 1
        if q < n:
            return (starts[q], ends[q])
        return (ends[n - 1], ends[n - 1])
    if pe > ps:
        pe = min(pe, n)
        # the whitespace a leading "▁" stands for is not part of the span
        if piece[0] == SPIECE_UNDERLINE and len(piece) > 1:
            while ps < pe - 1 and pre[ps].isspace():
                ps += 1
        return (starts[ps], ends[pe - 1])
    point = starts[ps] if ps < n else ends[n - 1]
    return (point, point)


def digit_comma_offsets(span: tuple[int, int], pre: str, body_text: str, new_pieces: list[str]
                        ) -> list[tuple[int, int]]:
    """Spans (into ``pre``) of the pieces that replace one "<digit>," piece, then of its comma.

    ``span`` is the replaced piece's span, ``body_text`` the piece without ``▁`` and comma, and
    ``new_pieces`` what ``body_text`` encodes to (the ALBERT digit-comma rule).
    """
    s, e = span
    surface = pre[s:e]
    comma = (max(s, e - 1), e)
    body_end = comma[0]
    body = surface[: body_end - s].lstrip()
    body_start = body_end - len(body)
    lengths = [len(p.replace(SPIECE_UNDERLINE, "")) for p in new_pieces]
    out: list[tuple[int, int]] = []
    if sum(lengths) == len(body) and body == body_text:
        pos = body_start
        for n in lengths:
            out.append((pos, pos + n))
            pos += n
    else:  # normalisation changed the text: give every new piece the whole body
        out.extend([(body_start, body_end)] * len(new_pieces))
    out.append(comma)
    return out
