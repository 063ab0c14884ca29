"""Batch encoding: checking the inputs of a tokenizer call, truncation, padding and the output.

Tokenizer-kind independent: these work on :class:`EncodedText` (one text's ids, tokens, offsets, words)
and plain lists, whatever produced them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["BatchEncoding", "EncodedText", "PADDING_VALUES", "TRUNCATION_VALUES", "TENSOR_TYPES", "check_bool",
           "check_text", "check_length", "check_tensor_type", "padding_strategy", "truncation_strategy",
           "batch_inputs", "truncate", "pad_target"]

PADDING_VALUES = (False, True, "longest", "max_length", "do_not_pad")
TRUNCATION_VALUES = (False, True, "longest_first", "only_first", "only_second", "do_not_truncate")
TENSOR_TYPES = (None, "pt", "np")


# --------------------------------------------------------------------------------------------------
# argument checks


def check_bool(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return value


def check_text(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise TypeError(
            f"{what} must be a str, got {type(value).__name__} ({value!r:.60}); "
            "pass text (or a list of texts), not ids or None"
        )
    return value


def check_length(name: str, value: Any, minimum: int) -> None:
    """``value`` is None or an int >= ``minimum``."""
    if value is None:
        return
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{name} must be an int, got {type(value).__name__} ({value!r})")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")


def check_tensor_type(return_tensors: Any) -> None:
    if return_tensors not in TENSOR_TYPES:
        raise ValueError(f"return_tensors must be one of {TENSOR_TYPES}, got {return_tensors!r}")


def padding_strategy(padding: Any) -> str:
    """``padding`` as one of "do_not_pad", "longest", "max_length"."""
    if padding is None or padding is False or padding == "do_not_pad":
        return "do_not_pad"
    if padding is True or padding == "longest":
        return "longest"
    if padding == "max_length":
        return "max_length"
    raise ValueError(f"padding must be one of {PADDING_VALUES}, got {padding!r}")


def truncation_strategy(truncation: Any) -> str:
    """``truncation`` as one of "do_not_truncate", "longest_first", "only_first", "only_second"."""
    if truncation is None or truncation is False or truncation == "do_not_truncate":
        return "do_not_truncate"
    if truncation is True or truncation == "longest_first":
        return "longest_first"
    if truncation in ("only_first", "only_second"):
        return truncation
    raise ValueError(f"truncation must be one of {TRUNCATION_VALUES}, got {truncation!r}")


def batch_inputs(text: Any, text_pair: Any, split_words: bool) -> tuple[bool, list, list | None]:
    """A call's ``text``/``text_pair`` -> (batched, list of first texts, list of pair texts or None).

    A batch given without ``text_pair`` may hold pairs as ``(text, text_pair)`` tuples (or 2-lists), as in
    transformers; with ``split_words`` each side of such a pair is a list of words.
    """
    if split_words:
        def is_single(x):
            return isinstance(x, (list, tuple)) and all(isinstance(w, str) for w in x)

        def check_single(x, what):
            if not isinstance(x, (list, tuple)):
                raise TypeError(
                    f"{what} must be a list of words (str) with is_split_into_words=True, "
                    f"got {type(x).__name__}"
                )
            for w in x:
                check_text(w, f"every word of {what}")
            return list(x)

        def is_pair(x):
            return isinstance(x, (list, tuple)) and len(x) == 2 and all(
                isinstance(side, (list, tuple)) and not isinstance(side, str) for side in x)

        batched = isinstance(text, (list, tuple)) and len(text) > 0 and not is_single(text)
    else:
        def check_single(x, what):
            return check_text(x, what)

        def is_pair(x):
            return isinstance(x, (list, tuple)) and len(x) == 2 and all(isinstance(side, str) for side in x)

        if isinstance(text, str):
            batched = False
        elif isinstance(text, (list, tuple)):
            batched = True
        else:
            check_text(text, "text")
    if batched:
        if text_pair is None and len(text) > 0 and any(is_pair(t) for t in text):
            if not all(is_pair(t) for t in text):
                k = next(k for k, t in enumerate(text) if not is_pair(t))
                raise TypeError(f"text[{k}] is not a (text, text_pair) pair like the other items of the batch; "
                                "pass all items as pairs or none")
            firsts = [check_single(t[0], f"text[{k}][0]") for k, t in enumerate(text)]
            pairs = [check_single(t[1], f"text[{k}][1]") for k, t in enumerate(text)]
            return True, firsts, pairs
        firsts = [check_single(t, f"text[{k}]") for k, t in enumerate(text)]
        if text_pair is None:
            return True, firsts, None
        if not isinstance(text_pair, (list, tuple)) or (split_words and is_single(text_pair) and text_pair):
            raise TypeError("text is a batch, so text_pair must be a batch (list) of the same length")
        if len(text_pair) != len(firsts):
            raise ValueError(
                f"text and text_pair must have the same length, got {len(firsts)} and {len(text_pair)}"
            )
        pairs = [check_single(t, f"text_pair[{k}]") for k, t in enumerate(text_pair)]
        return True, firsts, pairs
    first = check_single(text, "text")
    if text_pair is None:
        return False, [first], None
    return False, [first], [check_single(text_pair, "text_pair")]


# --------------------------------------------------------------------------------------------------
# one encoded text, truncation, padding


class EncodedText:
    """One encoded text without added special tokens: ids, token strings and offsets (each optional),
    word ids (a list for split-into-words input, else computed on demand by the tokenizer).

    A slice keeps a reference to the unsliced text (``base``) and where it starts, so word ids of
    truncated windows keep the numbering of the whole text.
    """

    __slots__ = ("ids", "tokens", "offsets", "words", "special_pos", "base", "start")

    def __init__(self, ids, tokens=None, offsets=None, words=None, special_pos=None):
        self.ids = ids
        self.tokens = tokens
        self.offsets = offsets  # (start, end) character spans into the original text
        self.words = words
        self.special_pos = special_pos  # positions of special tokens written in the text
        self.base = self
        self.start = 0

    def __len__(self) -> int:
        return len(self.ids)

    def slice(self, start: int, stop: int) -> EncodedText:
        out = EncodedText(
            self.ids[start:stop],
            None if self.tokens is None else self.tokens[start:stop],
            None if self.offsets is None else self.offsets[start:stop],
        )
        out.base = self.base
        out.start = self.start + start
        return out


def truncate(a: EncodedText, b: EncodedText | None, strategy: str, max_length: int, stride: int, overflow: bool,
             n_special: int, pair_rule: str = "one_at_a_time", side: str = "right"
             ) -> list[tuple[EncodedText, EncodedText | None]]:
    """Cut an example (``a`` plus optional pair ``b``) that is longer than ``max_length`` into rows.

    ``n_special``: special tokens the layout adds. Without ``overflow`` one row comes back; with it,
    windows of the truncated text that overlap by ``stride`` tokens.  ``pair_rule`` is how
    ``longest_first`` shares the room of a pair: "one_at_a_time" (transformers' Python tokenizers: one
    token at a time from the longer text, from the second on ties) or "tokenizers" (the ``tokenizers``
    library: the shorter text is kept whole when it fits in half the room, else each gets half, the
    longer one the odd token).  ``side`` ("right" or "left", the tokenizer's ``truncation_side``) is the
    end tokens are cut from; with "left" the first row keeps a text's last tokens and overflowing windows
    step towards its start, the last window ending where the one before it begins plus ``stride`` (the
    ``tokenizers`` library's rule, which transformers 5 follows).
    """
    total = len(a) + (len(b) if b is not None else 0) + n_special
    if max_length < n_special:
        raise ValueError(
            f"max_length={max_length} is too small: the special tokens alone need {n_special} positions; "
            f"use max_length >= {n_special + 1}"
        )
    budget = max_length - n_special  # tokens of text that fit

    def keep(seq: EncodedText, n: int) -> EncodedText:
        return seq.slice(0, n) if side == "right" else seq.slice(len(seq) - n, len(seq))

    if b is not None and strategy == "longest_first":
        if overflow:
            raise ValueError(
                "return_overflowing_tokens with a pair needs truncation='only_first' or 'only_second' "
                "(the windows slide over one of the texts), not 'longest_first'"
            )
        la, lb = len(a), len(b)
        if pair_rule == "tokenizers":
            short = min(la, lb)
            keep_short, keep_long = short, max(short, budget - short)
            if keep_short + keep_long > budget:
                keep_short, keep_long = budget // 2, budget // 2 + budget % 2
            keep_a, keep_b = (keep_long, keep_short) if la > lb else (keep_short, keep_long)
            return [(keep(a, keep_a), keep(b, keep_b))]
        remove = total - max_length
        first_remove = min(abs(la - lb), remove)
        second = remove - first_remove
        if la > lb:
            ra, rb = first_remove + second // 2, second - second // 2
        else:
            ra, rb = second // 2, first_remove + second - second // 2
        return [(keep(a, la - ra), keep(b, lb - rb))]
    if strategy == "only_second":
        target, other = b, a
    else:
        target, other = a, b
    room = budget - (len(other) if other is not None else 0)
    if room <= 0:
        which = "first" if strategy == "only_second" else "second"
        raise ValueError(
            f"cannot truncate with truncation={strategy!r} to max_length={max_length}: the {which} text "
            f"alone takes {len(other)} tokens; use a larger max_length or truncation='longest_first'"
        )
    n = len(target)
    spans = [(0, min(room, n))] if side == "right" else [(max(0, n - room), n)]
    if overflow:
        if stride >= room:
            raise ValueError(
                f"stride={stride} must be smaller than the window ({room} tokens of text fit in "
                f"max_length={max_length}); lower stride or raise max_length"
            )
        if side == "right":
            while spans[-1][1] < n:
                start = spans[-1][0] + room - stride
                spans.append((start, min(start + room, n)))
        else:
            while spans[-1][0] > 0:
                stop = spans[-1][1] - (room - stride)
                spans.append((max(0, stop - room), stop))
    if strategy == "only_second":
        return [(a, target.slice(start, stop)) for start, stop in spans]
    return [(target.slice(start, stop), b) for start, stop in spans]


def pad_target(lengths: list[int], strategy: str, max_length: int | None, pad_to_multiple_of: int | None
               ) -> int | None:
    """The length rows are padded to (None: no padding)."""
    target = None
    if strategy == "longest":
        target = max(lengths) if lengths else 0
    elif strategy == "max_length":
        target = max_length
    if target is not None and pad_to_multiple_of:
        target = -(-target // pad_to_multiple_of) * pad_to_multiple_of
    return target


# --------------------------------------------------------------------------------------------------
# the output


class BatchEncoding(dict):
    """The tokenizer's output: a dict (``input_ids``, ``token_type_ids``, ...) with attribute access.

    ``word_ids(i)`` and ``sequence_ids(i)`` give, for row ``i``, the word index (``None`` for special and
    pad tokens) and the sequence index (0 for the first text, 1 for the pair, ``None`` for special and
    pad tokens) of every token.
    """

    def __init__(
        self,
        data: Mapping[str, Any] | None = None,
        word_ids: list[list[int | None]] | None = None,
        sequence_ids: list[list[int | None]] | None = None,
        tokens: list[list[str]] | None = None,
    ):
        super().__init__(data or {})
        self._word_ids = word_ids
        self._sequence_ids = sequence_ids
        self._tokens = tokens

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        try:
            return self[name]
        except KeyError:
            raise AttributeError(f"BatchEncoding has no key or attribute {name!r}") from None

    def __getstate__(self) -> dict:
        return {"data": dict(self), "extra": (self._word_ids, self._sequence_ids, self._tokens)}

    def __setstate__(self, state: dict) -> None:
        self.update(state["data"])
        self._word_ids, self._sequence_ids, self._tokens = state["extra"]

    def __reduce__(self):
        return (BatchEncoding, (), self.__getstate__())

    def _row(self, table: list | None, batch_index: int, what: str) -> list:
        if table is None:
            raise ValueError(f"{what}() is only available on the output of the tokenizer's __call__")
        if not -len(table) <= batch_index < len(table):
            raise IndexError(f"batch_index {batch_index} out of range for a batch of {len(table)}")
        return list(table[batch_index])

    def word_ids(self, batch_index: int = 0) -> list[int | None]:
        """Word index of every token of row ``batch_index`` (``None`` for special/pad tokens)."""
        return self._row(self._word_ids, batch_index, "word_ids")

    def sequence_ids(self, batch_index: int = 0) -> list[int | None]:
        """0/1 for tokens of the first/second text of row ``batch_index``, ``None`` for the others."""
        return self._row(self._sequence_ids, batch_index, "sequence_ids")

    def tokens(self, batch_index: int = 0) -> list[str]:
        """The token strings of row ``batch_index``."""
        return self._row(self._tokens, batch_index, "tokens")

    def to(self, device: Any) -> BatchEncoding:
        """Move every tensor value to ``device`` (other values are kept); returns ``self``."""
        for key, value in list(self.items()):
            if hasattr(value, "to") and callable(value.to):
                self[key] = value.to(device)
        return self

    def convert_to_tensors(self, tensor_type: str | None) -> BatchEncoding:
        check_tensor_type(tensor_type)
        if tensor_type is None:
            return self
        for key, value in list(self.items()):
            if isinstance(value, list):
                if value and isinstance(value[0], list):
                    lengths = {len(row) for row in value}
                    if len(lengths) > 1:
                        raise ValueError(
                            f"cannot make a tensor of {key!r}: rows have different lengths {sorted(lengths)}; "
                            "pass padding=True (or padding='max_length') to pad them to one length"
                        )
                if tensor_type == "pt":
                    import torch

                    self[key] = torch.tensor(value, dtype=torch.long)
                else:
                    import numpy as np

                    self[key] = np.asarray(value, dtype=np.int64)
        return self


class LazyRows:
    """Word ids, sequence ids or tokens of the rows of a BatchEncoding, built when first asked for."""

    def __init__(self, tokenizer: Any, rows: list[dict], what: str, target: int | None, left: bool,
                 pad_value: Any):
        self._tok = tokenizer
        self._rows = rows
        self._what = what
        self._target = target
        self._left = left
        self._pad = pad_value

    def __len__(self) -> int:
        return len(self._rows)

    def __getitem__(self, index: int) -> list:
        row = self._rows[index]
        values = self._tok._row_info(row, self._what)
        if self._target is not None and self._target > len(values):
            filler = [self._pad] * (self._target - len(values))
            values = filler + values if self._left else values + filler
        return values
