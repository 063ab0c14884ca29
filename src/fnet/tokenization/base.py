"""The tokenizer surface shared by every tokenizer kind: calls, pairs, padding, truncation, saving.

Layout (BERT/ALBERT/FNet): ``[CLS] A [SEP]`` or ``[CLS] A [SEP] B [SEP]``, token types 0 for the first
part and 1 for ``B [SEP]``.  Offsets are character spans into the original text, ``(0, 0)`` for special
and pad tokens.  ``torch``/``numpy`` are imported only when ``return_tensors`` asks for them.
"""

from __future__ import annotations

import json
import os
import warnings
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from fnet.io import atomic_write_text
from fnet.tokenization.encoding import (
    BatchEncoding,
    EncodedText,
    LazyRows,
    batch_inputs,
    check_bool,
    check_length,
    check_tensor_type,
    check_text,
    pad_target,
    padding_strategy,
    truncate,
    truncation_strategy,
)
from fnet.tokenization.normalization import clean_up_tokenization

__all__ = ["TokenizerBase", "TokenizerFileError", "TOKENIZER_CONFIG_FILE", "SPECIAL_TOKENS_MAP_FILE"]

TOKENIZER_CONFIG_FILE = "tokenizer_config.json"
SPECIAL_TOKENS_MAP_FILE = "special_tokens_map.json"
# the special-token attributes in the order of ``all_special_tokens`` (the reference's order)
SPECIAL_ORDER = ("unk_token", "sep_token", "pad_token", "cls_token", "mask_token")
# tokenizer_config.json keys every kind reads back (each kind adds its own ``option_names``)
SHARED_OPTION_NAMES = ("model_max_length", "clean_up_tokenization_spaces", "padding_side")
# a ``model_max_length`` at least this big means "no limit" (transformers writes 1e30 for that)
_NO_LIMIT = 10**12
# pad value of every padded key
PAD_VALUES_FIXED = {"attention_mask": 0, "special_tokens_mask": 1, "offset_mapping": (0, 0)}


class TokenizerFileError(FileNotFoundError, ValueError):
    """A tokenizer file is missing (also a ``ValueError``, so callers may catch either)."""


def token_content(value: Any) -> str | None:
    """A special token as written by us or transformers: a str, or a dict with ``content``."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, Mapping) and isinstance(value.get("content"), str):
        return value["content"]
    raise ValueError(f"cannot read special token {value!r}: expected a string or {{'content': ...}}")


class TokenizerBase(ABC):
    """What every tokenizer kind shares: ``__call__`` (single texts, pairs, batches, split words,
    overflowing windows), padding (``pad``), truncation (all strategies), offsets, special-tokens mask,
    ``return_tensors``, decoding of special tokens, ``save_pretrained``/``from_pretrained``.

    A subclass (one tokenizer kind) implements exactly these primitives:

    * ``__init__(vocab_file, <its options>, **shared)``: read its files, then call
      ``TokenizerBase.__init__(self, **shared)`` before anything that needs the special tokens, and
      ``self._index_special_tokens()`` once ids can be looked up.  ``shared`` are the base's keyword
      arguments (special tokens, ``model_max_length``, ``clean_up_tokenization_spaces``, ``padding_side``).
    * ``tokenizer_class`` (class attribute): the class name ``tokenizer_config.json`` records.
    * ``option_names`` (class attribute): its own ``__init__`` options that ``tokenizer_config.json``
      stores (read back by ``from_pretrained``); ``_kind_options()`` returns their current values.
    * ``_encode_batch(texts, split_words, want_tokens, want_offsets) -> list[EncodedText]``: encode many
      texts (or, with ``split_words``, lists of words) without adding special tokens.  Special tokens
      written in a text become single tokens listed in ``special_pos``; ``offsets`` (when asked) are
      character spans into the original text (into each word with ``split_words``), ``(0, 0)`` for
      special tokens; ``words`` is filled for ``split_words`` input.  ``tokens`` may be left None unless
      ``want_tokens``.
    * ``_compute_word_ids(encoded) -> list[int | None]``: word index of every token of an unsliced
      ``EncodedText`` whose ``words`` is None (``None`` at ``special_pos``).
    * ``_token_to_id(token) -> int``, ``_id_to_token(index) -> str`` (``ValueError`` when out of range),
      ``vocab_size`` (property) and ``get_vocab() -> dict[str, int]``.
    * ``_decode_ids(ids) -> str`` and ``_decode_tokens(tokens) -> str``: the text of a run of non-special
      ids / token strings.
    * ``_piece_role(index) -> (is_text, starts_word)`` for a non-special id: whether its piece is text
      a sentence may hold (not a control, unknown or reserved piece, not one that decodes to nothing)
      and whether it begins a word. ``text_piece_mask`` and ``word_start_mask`` read it.
    * ``_vocabulary_file(path) -> Path`` (classmethod): the vocabulary file to load for a folder or file
      ``path`` (raises ``TokenizerFileError`` saying what is missing); ``_save_vocabulary(directory) ->
      Path``: write that file (atomically, ``fnet.io``) and return its path.

    ``mask_lstrip`` (class attribute): the mask token takes the whitespace to its left (written to the
    saved files' ``lstrip``).
    """

    model_input_names = ["input_ids", "token_type_ids"]
    tokenizer_class: str  # the name written to tokenizer_config.json (what transformers loads it as)
    option_names: tuple[str, ...] = ()
    mask_lstrip = False
    padding_side = "right"
    pair_truncation = "one_at_a_time"  # how longest_first shares a pair's room (see encoding.truncate)

    def __init__(
        self,
        unk_token: str,
        sep_token: str,
        pad_token: str | None,
        cls_token: str,
        mask_token: str | None,
        model_max_length: int = 512,
        clean_up_tokenization_spaces: bool = True,
        padding_side: str = "right",
    ):
        self.clean_up_tokenization_spaces = check_bool("clean_up_tokenization_spaces", clean_up_tokenization_spaces)
        if not isinstance(model_max_length, int) or isinstance(model_max_length, bool) or model_max_length < 1:
            raise ValueError(f"model_max_length must be a positive int, got {model_max_length!r}")
        self.model_max_length = model_max_length
        if padding_side not in ("right", "left"):
            raise ValueError(f"padding_side must be 'right' or 'left', got {padding_side!r}")
        self.padding_side = padding_side
        for name, value, optional in (
            ("unk_token", unk_token, False),
            ("sep_token", sep_token, False),
            ("cls_token", cls_token, False),
            ("pad_token", pad_token, True),
            ("mask_token", mask_token, True),
        ):
            value = token_content(value)
            if value is None and not optional:
                raise ValueError(f"{name} cannot be None")
            if value is not None and (not isinstance(value, str) or not value):
                raise ValueError(f"{name} must be a non-empty string, got {value!r}")
            setattr(self, name, value)
        self._warned_long = False
        self._warned_max_length = False

    # ---------------------------------------------------------------------------------------------
    # the primitives a tokenizer kind implements (see the class docstring)

    @abstractmethod
    def _encode_batch(self, texts: Sequence[Any], split_words: bool = False, want_tokens: bool = False,
                      want_offsets: bool = False) -> list[EncodedText]: ...

    @abstractmethod
    def _compute_word_ids(self, encoded: EncodedText) -> list[int | None]: ...

    @abstractmethod
    def _token_to_id(self, token: str) -> int: ...

    @abstractmethod
    def _id_to_token(self, index: int) -> str: ...

    @property
    @abstractmethod
    def vocab_size(self) -> int: ...

    @abstractmethod
    def get_vocab(self) -> dict[str, int]: ...

    @abstractmethod
    def _decode_ids(self, ids: list[int]) -> str: ...

    @abstractmethod
    def _decode_tokens(self, tokens: list[str]) -> str: ...

    @abstractmethod
    def _piece_role(self, index: int) -> tuple[bool, bool]: ...

    @classmethod
    @abstractmethod
    def _vocabulary_file(cls, path: Path) -> Path: ...

    @abstractmethod
    def _save_vocabulary(self, directory: Path) -> Path: ...

    @abstractmethod
    def _kind_options(self) -> dict[str, Any]: ...

    # ---------------------------------------------------------------------------------------------
    # special tokens and vocabulary

    def _index_special_tokens(self) -> None:
        """Look up the special tokens' ids (call once the vocabulary is loaded)."""
        self._special_ids = {tok: self._token_to_id(tok) for tok in self.all_special_tokens}
        self.unk_token_id = self._token_to_id(self.unk_token)
        self.sep_token_id = self._token_to_id(self.sep_token)
        self.cls_token_id = self._token_to_id(self.cls_token)
        self.pad_token_id = None if self.pad_token is None else self._token_to_id(self.pad_token)
        self.mask_token_id = None if self.mask_token is None else self._token_to_id(self.mask_token)
        self.pad_token_type_id = 0
        self._all_special_ids_set = frozenset(self._special_ids.values())

    def __len__(self) -> int:
        return self.vocab_size

    @property
    def special_tokens_map(self) -> dict[str, str]:
        return {name: getattr(self, name) for name in SPECIAL_ORDER if getattr(self, name) is not None}

    @property
    def all_special_tokens(self) -> list[str]:
        out: list[str] = []
        for name in SPECIAL_ORDER:
            token = getattr(self, name)
            if token is not None and token not in out:
                out.append(token)
        return out

    @property
    def all_special_ids(self) -> list[int]:
        return [self._special_ids[t] for t in self.all_special_tokens]

    def text_piece_mask(self) -> list[bool]:
        """For every id: whether a sentence may hold its piece (special tokens, control, unknown and
        reserved pieces, and pieces that decode to nothing may not). What a sampler draws from."""
        return [i not in self._all_special_ids_set and self._piece_role(i)[0] for i in range(self.vocab_size)]

    def word_start_mask(self) -> list[bool]:
        """For every id: whether its piece begins a word (SentencePiece's '\u2581' pieces, WordPiece's
        pieces without '##'); special tokens count as word starts. Whole-word masking and generation
        read it."""
        return [i in self._all_special_ids_set or self._piece_role(i)[1] for i in range(self.vocab_size)]

    def _seq_words(self, seq: EncodedText) -> list[int | None]:
        """Word index of every token of ``seq`` (numbered within its whole, unsliced text)."""
        base = seq.base
        if base.words is None:
            base.words = self._compute_word_ids(base)
        return base.words[seq.start: seq.start + len(seq.ids)]

    # ---------------------------------------------------------------------------------------------
    # token <-> id, decoding

    def tokenize(self, text: str) -> list[str]:
        """Token strings of ``text`` (no ``[CLS]``/``[SEP]`` added; special tokens in the text are kept)."""
        check_text(text, "text")
        return self._encode_batch([text], want_tokens=True)[0].tokens

    def convert_tokens_to_ids(self, tokens: str | Sequence[str]) -> int | list[int]:
        if isinstance(tokens, str):
            return self._token_to_id(tokens)
        if not isinstance(tokens, (list, tuple)):
            raise TypeError(f"tokens must be a str or a list of str, got {type(tokens).__name__}")
        return [self._token_to_id(check_text(t, "every token")) for t in tokens]

    def _check_ids(self, ids: Any) -> list[int]:
        if hasattr(ids, "tolist"):
            ids = ids.tolist()
        if isinstance(ids, int) and not isinstance(ids, bool):
            return [ids]
        if not isinstance(ids, (list, tuple)):
            raise TypeError(f"ids must be an int, a list of ints or a tensor, got {type(ids).__name__}")
        for i in ids:
            if not isinstance(i, int) or isinstance(i, bool):
                raise TypeError(f"ids must be ints, got {type(i).__name__} ({i!r:.40})")
            if not 0 <= i < self.vocab_size:
                raise ValueError(f"token id {i} is out of range: the vocabulary has {self.vocab_size} ids")
        return list(ids)

    def convert_ids_to_tokens(self, ids: int | Sequence[int], skip_special_tokens: bool = False):
        single = isinstance(ids, int) and not isinstance(ids, bool)
        ids = self._check_ids(ids)
        if single:
            return self._id_to_token(ids[0])
        return [self._id_to_token(i) for i in ids if not (skip_special_tokens and i in self._all_special_ids_set)]

    def convert_tokens_to_string(self, tokens: Sequence[str]) -> str:
        """Join tokens back into text (special tokens are kept as words)."""
        specials = set(self.all_special_tokens)
        return _join_runs(tokens, specials.__contains__, self._decode_tokens, str, skip_specials=False)

    def decode(
        self,
        token_ids: Any,
        skip_special_tokens: bool = False,
        clean_up_tokenization_spaces: bool | None = None,
    ) -> str:
        """Text of ``token_ids`` (a list of ints or a 1-d tensor)."""
        ids = self._check_ids(token_ids)
        out = _join_runs(ids, self._all_special_ids_set.__contains__, self._decode_ids, self._id_to_token,
                         skip_specials=skip_special_tokens)
        if clean_up_tokenization_spaces is None:
            clean_up_tokenization_spaces = self.clean_up_tokenization_spaces
        if clean_up_tokenization_spaces:
            out = clean_up_tokenization(out)
        return out

    def batch_decode(self, sequences: Any, skip_special_tokens: bool = False,
                     clean_up_tokenization_spaces: bool | None = None) -> list[str]:
        if hasattr(sequences, "tolist"):
            sequences = sequences.tolist()
        if not isinstance(sequences, (list, tuple)):
            raise TypeError(f"sequences must be a list of id lists or a 2-d tensor, got {type(sequences).__name__}")
        return [self.decode(s, skip_special_tokens, clean_up_tokenization_spaces) for s in sequences]

    # ---------------------------------------------------------------------------------------------
    # special-token layout

    def build_inputs_with_special_tokens(self, token_ids_0: list[int], token_ids_1: list[int] | None = None) -> list[int]:
        """``[CLS] A [SEP]`` or ``[CLS] A [SEP] B [SEP]``."""
        out = [self.cls_token_id] + list(token_ids_0) + [self.sep_token_id]
        if token_ids_1 is not None:
            out += list(token_ids_1) + [self.sep_token_id]
        return out

    def get_special_tokens_mask(self, token_ids_0: list[int], token_ids_1: list[int] | None = None,
                                already_has_special_tokens: bool = False) -> list[int]:
        """1 for special tokens, 0 for sequence tokens."""
        if already_has_special_tokens:
            if token_ids_1 is not None:
                raise ValueError(
                    "already_has_special_tokens=True takes one list that already holds the special tokens; "
                    "do not pass token_ids_1"
                )
            return [1 if i in self._all_special_ids_set else 0 for i in token_ids_0]
        mask = [1] + [0] * len(token_ids_0) + [1]
        if token_ids_1 is not None:
            mask += [0] * len(token_ids_1) + [1]
        return mask

    def create_token_type_ids_from_sequences(self, token_ids_0: list[int], token_ids_1: list[int] | None = None) -> list[int]:
        """0 for ``[CLS] A [SEP]``, 1 for ``B [SEP]``."""
        first = [0] * (len(token_ids_0) + 2)
        if token_ids_1 is None:
            return first
        return first + [1] * (len(token_ids_1) + 1)

    def num_special_tokens_to_add(self, pair: bool = False) -> int:
        return 3 if pair else 2

    # ---------------------------------------------------------------------------------------------
    # __call__

    def __call__(
        self,
        text: str | Sequence[str] | Sequence[Sequence[str]],
        text_pair: str | Sequence[str] | Sequence[Sequence[str]] | None = None,
        add_special_tokens: bool = True,
        padding: bool | str = False,
        truncation: bool | str | None = None,
        max_length: int | None = None,
        stride: int = 0,
        is_split_into_words: bool = False,
        pad_to_multiple_of: int | None = None,
        return_tensors: str | None = None,
        return_token_type_ids: bool | None = None,
        return_attention_mask: bool | None = None,
        return_overflowing_tokens: bool = False,
        return_special_tokens_mask: bool = False,
        return_offsets_mapping: bool = False,
        return_length: bool = False,
        verbose: bool = True,
    ) -> BatchEncoding:
        """Encode a text, a pair, or a batch of either, like transformers' tokenizers.

        Returns a :class:`BatchEncoding` with ``input_ids``, ``token_type_ids`` and ``attention_mask``
        (each optional) plus, when asked, ``special_tokens_mask``, ``offset_mapping``, ``length``
        (tokens before padding) and ``overflow_to_sample_mapping``.  A single text gives flat lists,
        a batch gives lists of rows; overflowing windows always give rows.

        ``is_split_into_words=True`` takes each text as a list of words (NER): every word is encoded on
        its own, ``word_ids()`` are the word indices and offsets are relative to each word.  With
        ``return_overflowing_tokens`` and ``stride``, a text longer than ``max_length`` gives several
        windows (rows) that overlap by ``stride`` tokens; ``truncation="only_second"`` slides them over
        the pair (QA contexts), ``"only_first"``/``True`` over the first text; ``overflow_to_sample_mapping``
        gives each row's example.
        """
        pad_strategy = padding_strategy(padding)
        trunc_strategy = truncation_strategy(truncation)
        check_length("max_length", max_length, 1)
        check_length("stride", stride, 0)
        check_length("pad_to_multiple_of", pad_to_multiple_of, 1)
        check_tensor_type(return_tensors)
        batched, firsts, pairs = batch_inputs(text, text_pair, is_split_into_words)
        if trunc_strategy == "only_second" and pairs is None:
            raise ValueError("truncation='only_second' needs a text_pair; use truncation=True for single texts")
        self._check_can_pad(pad_strategy)
        if trunc_strategy != "do_not_truncate" and max_length is None:
            max_length = self.model_max_length
        if pad_strategy == "max_length" and max_length is None:
            max_length = self.model_max_length
        if return_overflowing_tokens and trunc_strategy == "do_not_truncate":
            raise ValueError("return_overflowing_tokens=True needs truncation (e.g. truncation='only_second')")

        everything = firsts + (pairs or [])
        seqs = self._encode_batch(everything, split_words=is_split_into_words, want_tokens=False,
                                  want_offsets=return_offsets_mapping)
        firsts_enc = seqs[: len(firsts)]
        pairs_enc = seqs[len(firsts):] if pairs is not None else None

        rows: list[dict] = []
        for k, a in enumerate(firsts_enc):
            b = None if pairs_enc is None else pairs_enc[k]
            for row in self._rows_for_example(a, b, add_special_tokens, trunc_strategy, max_length, stride,
                                              return_overflowing_tokens, verbose):
                row["sample"] = k
                rows.append(row)

        return self._finish(
            rows,
            batched=batched or return_overflowing_tokens,  # windows always come as rows
            padding_strategy=pad_strategy,
            max_length=max_length,
            pad_to_multiple_of=pad_to_multiple_of,
            return_tensors=return_tensors,
            return_token_type_ids=return_token_type_ids,
            return_attention_mask=return_attention_mask,
            return_overflowing_tokens=return_overflowing_tokens,
            return_special_tokens_mask=return_special_tokens_mask,
            return_offsets_mapping=return_offsets_mapping,
            return_length=return_length,
        )

    encode_plus = __call__
    batch_encode_plus = __call__

    def _check_can_pad(self, strategy: str) -> None:
        if strategy != "do_not_pad" and self.pad_token_id is None:
            raise ValueError("padding was requested but this tokenizer has no pad_token; set pad_token first")

    def _rows_for_example(self, a: EncodedText, b: EncodedText | None, add_special_tokens: bool, strategy: str,
                          max_length: int | None, stride: int, overflow: bool, verbose: bool) -> list[dict]:
        n_special = (3 if b is not None else 2) if add_special_tokens else 0
        total = len(a) + (len(b) if b is not None else 0) + n_special
        if strategy == "do_not_truncate" or max_length is None or total <= max_length:
            if strategy == "do_not_truncate" and verbose:
                if total > self.model_max_length:
                    self._warn_long(total)
                elif max_length is not None and total > max_length and not self._warned_max_length:
                    self._warned_max_length = True
                    warnings.warn(
                        f"an encoding has {total} tokens, more than max_length={max_length}, and it was not cut "
                        "because truncation was not requested; pass truncation=True to cut it",
                        UserWarning,
                        stacklevel=4,
                    )
            return [self._assemble(a, b, add_special_tokens)]
        return [self._assemble(ra, rb, add_special_tokens)
                for ra, rb in truncate(a, b, strategy, max_length, stride, overflow, n_special,
                                               self.pair_truncation)]

    def _warn_long(self, total: int) -> None:
        if not self._warned_long:
            self._warned_long = True
            warnings.warn(
                f"Token indices sequence length is longer than the specified maximum sequence length for this "
                f"model ({total} > {self.model_max_length}). Running this sequence through the model will result "
                "in indexing errors; pass truncation=True to cut it",
                UserWarning,
                stacklevel=4,
            )

    def _assemble(self, a: EncodedText, b: EncodedText | None, add_special_tokens: bool) -> dict:
        offsets = None
        if add_special_tokens:
            cls_, sep = self.cls_token_id, self.sep_token_id
            ids = [cls_, *a.ids, sep]
            types = [0] * len(ids)
            special = [1] + [0] * len(a.ids) + [1]
            if a.offsets is not None:
                offsets = [(0, 0), *a.offsets, (0, 0)]
            if b is not None:
                ids += b.ids
                ids.append(sep)
                types += [1] * (len(b.ids) + 1)
                special += [0] * len(b.ids) + [1]
                if offsets is not None:
                    offsets += b.offsets
                    offsets.append((0, 0))
        else:
            ids = list(a.ids)
            types = [0] * len(ids)
            special = [0] * len(ids)
            if a.offsets is not None:
                offsets = list(a.offsets)
            if b is not None:
                ids += b.ids
                types += [1] * len(b.ids)
                special += [0] * len(b.ids)
                if offsets is not None:
                    offsets += b.offsets
        return {"input_ids": ids, "token_type_ids": types, "special_tokens_mask": special,
                "offset_mapping": offsets, "parts": (a, b, add_special_tokens)}

    def _row_info(self, row: dict, what: str) -> list:
        """Word ids / sequence ids / tokens of an (unpadded) row."""
        a, b, special = row["parts"]
        if what == "tokens":
            return [self._id_to_token(i) for i in row["input_ids"]]
        if what == "words":
            wa = self._seq_words(a)
            wb = self._seq_words(b) if b is not None else None
        else:
            wa = [0] * len(a.ids)
            wb = [1] * len(b.ids) if b is not None else None
        if special:
            out = [None, *wa, None]
            if wb is not None:
                out += wb
                out.append(None)
        else:
            out = list(wa) + (wb if wb is not None else [])
        return out

    def _pad_values(self) -> dict[str, Any]:
        return {"input_ids": self.pad_token_id, "token_type_ids": self.pad_token_type_id, **PAD_VALUES_FIXED}

    def _finish(self, rows: list[dict], batched: bool, padding_strategy: str, max_length: int | None,
                pad_to_multiple_of: int | None, return_tensors: str | None, return_token_type_ids: bool | None,
                return_attention_mask: bool | None, return_overflowing_tokens: bool,
                return_special_tokens_mask: bool, return_offsets_mapping: bool, return_length: bool) -> BatchEncoding:
        if return_token_type_ids is None:
            return_token_type_ids = "token_type_ids" in self.model_input_names
        if return_attention_mask is None:
            return_attention_mask = True
        lengths = [len(r["input_ids"]) for r in rows]
        target = pad_target(lengths, padding_strategy, max_length, pad_to_multiple_of)
        keys = ["input_ids"]
        if return_token_type_ids:
            keys.append("token_type_ids")
        if return_attention_mask:
            keys.append("attention_mask")
        if return_special_tokens_mask:
            keys.append("special_tokens_mask")
        if return_offsets_mapping:
            keys.append("offset_mapping")
        pad_values = self._pad_values()
        columns: dict[str, list] = {key: [] for key in keys}
        left = self.padding_side == "left"
        for row, n in zip(rows, lengths):
            pad = (target - n) if (target is not None and target > n) else 0
            for key in keys:
                value = [1] * n if key == "attention_mask" else row[key]
                if pad:
                    filler = [pad_values[key]] * pad
                    value = filler + value if left else value + filler
                columns[key].append(value)
        if return_length:
            columns["length"] = lengths
        if return_overflowing_tokens:
            columns["overflow_to_sample_mapping"] = [r["sample"] for r in rows]
        if not batched:
            columns = {k: v[0] for k, v in columns.items()}
        enc = BatchEncoding(
            columns,
            word_ids=LazyRows(self, rows, "words", target, left, None),
            sequence_ids=LazyRows(self, rows, "seq_ids", target, left, None),
            tokens=LazyRows(self, rows, "tokens", target, left, self.pad_token),
        )
        if return_tensors is not None:
            if not batched:
                for key in list(enc.keys()):
                    enc[key] = [enc[key]]
            enc.convert_to_tensors(return_tensors)
        return enc

    # ---------------------------------------------------------------------------------------------
    # convenience API

    def encode(
        self,
        text: str | Sequence[str],
        text_pair: str | Sequence[str] | None = None,
        add_special_tokens: bool = True,
        padding: bool | str = False,
        truncation: bool | str | None = None,
        max_length: int | None = None,
        stride: int = 0,
        is_split_into_words: bool = False,
        return_tensors: str | None = None,
    ) -> Any:
        """Ids of one text (or pair): ``[CLS] A [SEP]`` / ``[CLS] A [SEP] B [SEP]``."""
        if not is_split_into_words:
            check_text(text, "text")
            if text_pair is not None:
                check_text(text_pair, "text_pair")
        enc = self(text, text_pair, add_special_tokens=add_special_tokens, padding=padding, truncation=truncation,
                   max_length=max_length, stride=stride, is_split_into_words=is_split_into_words,
                   return_tensors=return_tensors, return_token_type_ids=False, return_attention_mask=False)
        return enc["input_ids"]

    def pad(
        self,
        encoded_inputs: Any,
        padding: bool | str = True,
        max_length: int | None = None,
        pad_to_multiple_of: int | None = None,
        return_attention_mask: bool | None = None,
        return_tensors: str | None = None,
    ) -> BatchEncoding:
        """Pad a list of encodings (dicts of lists) or a dict of lists of rows to one length."""
        strategy = padding_strategy(padding)
        check_length("max_length", max_length, 1)
        check_length("pad_to_multiple_of", pad_to_multiple_of, 1)
        check_tensor_type(return_tensors)
        if isinstance(encoded_inputs, (list, tuple)):
            if not encoded_inputs:
                raise ValueError("pad() got an empty list of encodings")
            if not all(isinstance(e, Mapping) for e in encoded_inputs):
                raise TypeError("pad() takes a list of dicts (one per example) or a dict of lists")
            keys = list(encoded_inputs[0].keys())
            batch = {k: [_as_list(e[k]) for e in encoded_inputs] for k in keys}
        elif isinstance(encoded_inputs, Mapping):
            batch = {k: _as_list(v) for k, v in encoded_inputs.items()}
        else:
            raise TypeError(f"pad() takes a list of dicts or a dict of lists, got {type(encoded_inputs).__name__}")
        if "input_ids" not in batch:
            raise ValueError(f"pad() needs 'input_ids' among the keys, got {sorted(batch)}")
        single = batch["input_ids"] and not isinstance(batch["input_ids"][0], list)
        if single:
            batch = {k: [v] for k, v in batch.items()}
        self._check_can_pad(strategy)
        if strategy == "max_length" and max_length is None:
            max_length = self.model_max_length
        lengths = [len(r) for r in batch["input_ids"]]
        target = pad_target(lengths, strategy, max_length, pad_to_multiple_of)
        if return_attention_mask is None:
            return_attention_mask = True
        if return_attention_mask and "attention_mask" not in batch:
            batch["attention_mask"] = [[1] * n for n in lengths]
        pad_values = self._pad_values()
        left = self.padding_side == "left"
        out = {}
        for key, rows in batch.items():
            if key in pad_values and target is not None:
                new_rows = []
                for row, n in zip(rows, lengths):
                    if len(row) != n:
                        raise ValueError(f"{key!r} and 'input_ids' have different lengths ({len(row)} vs {n})")
                    filler = [pad_values[key]] * max(0, target - n)
                    new_rows.append(filler + list(row) if left else list(row) + filler)
                out[key] = new_rows
            else:
                out[key] = rows
        if single and return_tensors is None:
            out = {k: v[0] for k, v in out.items()}
        enc = BatchEncoding(out)
        return enc.convert_to_tensors(return_tensors)

    # ---------------------------------------------------------------------------------------------
    # saving and loading

    def _config_dict(self) -> dict:
        added_tokens_decoder = {}
        for token in self.all_special_tokens:
            i = self._special_ids[token]
            added_tokens_decoder[str(i)] = {
                "content": token,
                "lstrip": self.mask_lstrip and token == self.mask_token,
                "normalized": False,
                "rstrip": False,
                "single_word": False,
                "special": True,
            }
        return {
            "tokenizer_class": self.tokenizer_class,
            **self._kind_options(),
            "unk_token": self.unk_token,
            "sep_token": self.sep_token,
            "pad_token": self.pad_token,
            "cls_token": self.cls_token,
            "mask_token": self.mask_token,
            "model_max_length": self.model_max_length,
            "clean_up_tokenization_spaces": self.clean_up_tokenization_spaces,
            "padding_side": self.padding_side,
            "model_input_names": list(self.model_input_names),
            "added_tokens_decoder": dict(sorted(added_tokens_decoder.items(), key=lambda kv: int(kv[0]))),
        }

    def _special_tokens_map_file(self) -> dict:
        special_map: dict[str, Any] = {}
        for name in SPECIAL_ORDER:
            token = getattr(self, name)
            if token is None:
                continue
            if name == "mask_token":
                special_map[name] = {"content": token, "lstrip": self.mask_lstrip, "normalized": False,
                                     "rstrip": False, "single_word": False}
            else:
                special_map[name] = token
        return special_map

    def save_pretrained(self, save_directory: str | os.PathLike) -> tuple[str, str, str]:
        """Write the vocabulary file, ``tokenizer_config.json`` and ``special_tokens_map.json`` (atomically).

        Other files in the folder (e.g. the model's ``config.json`` and ``model.safetensors``) are left alone.
        Returns the three paths.
        """
        directory = Path(save_directory)
        if directory.exists() and not directory.is_dir():
            raise ValueError(f"save_directory {str(directory)!r} is a file, not a folder")
        directory.mkdir(parents=True, exist_ok=True)
        vocab_path = self._save_vocabulary(directory)
        config_path = atomic_write_text(directory / TOKENIZER_CONFIG_FILE, _json(self._config_dict()))
        map_path = atomic_write_text(directory / SPECIAL_TOKENS_MAP_FILE, _json(self._special_tokens_map_file()))
        self.vocab_file = str(vocab_path)
        return str(vocab_path), str(config_path), str(map_path)

    def _vocabulary_bytes(self) -> bytes:
        """The bytes :meth:`_save_vocabulary` writes (kinds that hold them in memory return them directly)."""
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            return self._save_vocabulary(Path(tmp)).read_bytes()

    def fingerprint(self) -> str:
        """A short hash of everything that decides the ids: the vocabulary file's bytes, the kind's
        options (e.g. lower-casing) and the special tokens. Two tokenizers with equal fingerprints give
        equal ids for every text; run and model folders record it (:mod:`fnet.run_folder`)."""
        import hashlib

        digest = hashlib.sha256(self._vocabulary_bytes())
        config = {k: v for k, v in self._config_dict().items() if k != "model_max_length"}
        digest.update(json.dumps(config, sort_keys=True, default=str).encode("utf-8"))
        return f"{self.tokenizer_class}:{digest.hexdigest()[:16]}"

    @classmethod
    def from_pretrained(cls, pretrained_path: str | os.PathLike, *, revision: str | None = None,
                        cache_dir: str | os.PathLike | None = None, local_files_only: bool | None = None,
                        token: str | bool | None = None, **kwargs: Any) -> TokenizerBase:
        """Load from a folder (its vocabulary file plus, when present, ``tokenizer_config.json`` and
        ``special_tokens_map.json``, as written by this class or by transformers), from the vocabulary
        file itself, or from a Hugging Face Hub id (``revision``, ``cache_dir``, ``local_files_only``,
        ``token``: see :func:`fnet.hub.resolve`).  ``kwargs`` override the saved options."""
        path = Path(pretrained_path)
        if not path.is_file():
            from fnet.hub import resolve

            path = resolve(pretrained_path, what="tokenizer", flag="--tokenizer", revision=revision,
                           cache_dir=cache_dir, local_files_only=local_files_only, token=token, weights=False)
        vocab_file = cls._vocabulary_file(path)
        options = cls._saved_options(path) if path.is_dir() else {}
        options.update(kwargs)
        return cls(vocab_file, **options)

    @classmethod
    def _saved_options(cls, directory: Path) -> dict[str, Any]:
        """The ``__init__`` options stored in a folder's ``tokenizer_config.json``/``special_tokens_map.json``."""
        options: dict[str, Any] = {}
        config_path = directory / TOKENIZER_CONFIG_FILE
        if config_path.is_file():
            config = _read_json(config_path)
            for key in (*cls.option_names, *SHARED_OPTION_NAMES):
                if key in config and config[key] is not None:
                    options[key] = config[key]
            for key in SPECIAL_ORDER:
                if key in config:
                    options[key] = token_content(config[key])
        map_path = directory / SPECIAL_TOKENS_MAP_FILE
        if map_path.is_file():
            special_map = _read_json(map_path)
            for key in SPECIAL_ORDER:
                if key in special_map:
                    options[key] = token_content(special_map[key])
        mml = options.get("model_max_length")
        if mml is not None:
            if isinstance(mml, float) and mml.is_integer():
                mml = int(mml)
            if not isinstance(mml, int) or mml >= _NO_LIMIT:
                mml = _NO_LIMIT  # transformers' "no limit"
            options["model_max_length"] = mml
        return options


def _join_runs(items: Sequence[Any], is_special, decode_run, special_text, skip_specials: bool) -> str:
    """Decode runs of ordinary items with ``decode_run``; special items stand as their own words."""
    out = ""
    run: list[Any] = []
    prev_special = False
    for item in items:
        if is_special(item):
            if skip_specials:
                continue
            if not prev_special:
                out += " "
            out += decode_run(run) + special_text(item)
            run = []
            prev_special = True
        else:
            run.append(item)
            prev_special = False
    out += decode_run(run)
    return out.strip()


def _as_list(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, tuple):
        return list(value)
    return value


def _json(data: dict) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"cannot read {str(path)!r}: {err}; fix or delete the file") from None
    if not isinstance(data, dict):
        raise ValueError(f"{str(path)!r} must hold a JSON object, got {type(data).__name__}")
    return data
