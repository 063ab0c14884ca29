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
# the special-token attributes in the order of ``all_special_tokens`` (transformers' order)
SPECIAL_ORDER = ("bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token")
# the special tokens the ``[CLS] A [SEP] B [SEP]`` layout and unknown text need (never None)
REQUIRED_SPECIALS = ("unk_token", "sep_token", "cls_token")
# tokenizer_config.json keys every kind reads back (each kind adds its own ``option_names``)
SHARED_OPTION_NAMES = ("model_max_length", "clean_up_tokenization_spaces", "padding_side", "truncation_side")
# the ends padding and truncation may work at
SIDES = ("right", "left")
# saved keys that do not change ids, left out of ``fingerprint`` (so folders recorded before they existed match)
_NOT_IDS = ("model_max_length", "bos_token", "eos_token", "extra_special_tokens", "truncation_side")
# a ``model_max_length`` at least this big means "no limit" (transformers writes 1e30 for that)
_NO_LIMIT = 10**12
# pad value of every padded key
PAD_VALUES_FIXED = {"attention_mask": 0, "special_tokens_mask": 1, "offset_mapping": (0, 0)}


class TokenizerFileError(FileNotFoundError, ValueError):
    """A tokenizer file is missing (also a ``ValueError``, so callers may catch either)."""


def token_content(value: Any) -> str | None:
    """A special token as written by us or transformers: a str, a dict with ``content`` or an
    ``AddedToken`` (``tokenizers``/transformers)."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, Mapping) and isinstance(value.get("content"), str):
        return value["content"]
    if isinstance(getattr(value, "content", None), str):
        return value.content
    raise ValueError(f"cannot read special token {value!r}: expected a string or {{'content': ...}}")


def token_is_special(value: Any, default: bool) -> bool:
    """The ``special`` flag of an added token as written by transformers (a dict or an ``AddedToken``)."""
    flag = value.get("special") if isinstance(value, Mapping) else getattr(value, "special", None)
    return default if flag is None else bool(flag)


def check_side(name: str, value: Any) -> str:
    if value not in SIDES:
        raise ValueError(f"{name} must be one of {SIDES}, got {value!r}")
    return value


class _SpecialToken:
    """``tok.<name>`` (e.g. ``tok.eos_token``): the special token, settable to a token of the vocabulary."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, tok: Any, owner: type | None = None) -> Any:
        if tok is None:
            return self
        return tok._specials.get(self.name)

    def __set__(self, tok: Any, value: Any) -> None:
        tok._set_special(self.name, value)


class _SpecialTokenId:
    """``tok.<name>_id`` (e.g. ``tok.eos_token_id``): the id of that special token; setting an id sets the
    token to the vocabulary's token of that id."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name[: -len("_id")]

    def __get__(self, tok: Any, owner: type | None = None) -> Any:
        if tok is None:
            return self
        token = tok._specials.get(self.name)
        return None if token is None else tok._special_ids[token]

    def __set__(self, tok: Any, index: Any) -> None:
        tok._set_special(self.name, None if index is None else tok._id_to_token(tok._check_ids(index)[0]))


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

    A kind whose vocabulary can grow (``add_tokens``, ``add_special_tokens``, special or saved added tokens the
    vocabulary lacks) also implements ``_add_to_vocab(token, special) -> id``, ``_has_token(token)`` and
    ``_base_vocab_size()`` (ids below it come from the vocabulary file), and may hook ``_on_tokens_changed()``
    to refresh what it derives from the special/added tokens.
    """

    model_input_names = ["input_ids", "token_type_ids"]
    tokenizer_class: str  # the name written to tokenizer_config.json (what transformers loads it as)
    option_names: tuple[str, ...] = ()
    mask_lstrip = False
    padding_side = "right"
    truncation_side = "right"
    pair_truncation = "one_at_a_time"  # how longest_first shares a pair's room (see encoding.truncate)

    # the special tokens and their ids, settable (``tok.pad_token = tok.eos_token``, ``tok.pad_token_id = 0``)
    bos_token = _SpecialToken()
    eos_token = _SpecialToken()
    unk_token = _SpecialToken()
    sep_token = _SpecialToken()
    pad_token = _SpecialToken()
    cls_token = _SpecialToken()
    mask_token = _SpecialToken()
    bos_token_id = _SpecialTokenId()
    eos_token_id = _SpecialTokenId()
    unk_token_id = _SpecialTokenId()
    sep_token_id = _SpecialTokenId()
    pad_token_id = _SpecialTokenId()
    cls_token_id = _SpecialTokenId()
    mask_token_id = _SpecialTokenId()

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
        truncation_side: str = "right",
        bos_token: str | None = None,
        eos_token: str | None = None,
        extra_special_tokens: Sequence[Any] | None = None,
        added_tokens_decoder: Mapping[Any, Any] | None = None,
    ):
        self.clean_up_tokenization_spaces = check_bool("clean_up_tokenization_spaces", clean_up_tokenization_spaces)
        if not isinstance(model_max_length, int) or isinstance(model_max_length, bool) or model_max_length < 1:
            raise ValueError(f"model_max_length must be a positive int, got {model_max_length!r}")
        self.model_max_length = model_max_length
        self.padding_side = check_side("padding_side", padding_side)
        self.truncation_side = check_side("truncation_side", truncation_side)
        self._specials: dict[str, str | None] = {}
        given = {"bos_token": bos_token, "eos_token": eos_token, "unk_token": unk_token, "sep_token": sep_token,
                 "pad_token": pad_token, "cls_token": cls_token, "mask_token": mask_token}
        for name in SPECIAL_ORDER:
            self._specials[name] = _check_token(name, given[name])
        self._extra_special = [_check_token("extra_special_tokens", t) for t in (extra_special_tokens or ())]
        # tokens added past the named special tokens (add_tokens, extra special tokens, a saved table): content ->
        # special; the ids are the kind's
        self._added_tokens: dict[str, bool] = {}
        self._saved_added = _read_added_tokens(added_tokens_decoder)
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
        """Look up the special tokens' ids (call once the vocabulary is loaded).

        First the saved added tokens (``added_tokens_decoder``) the vocabulary lacks are added at their saved
        ids, then the named and extra special tokens it still lacks are added after them.
        """
        self._restore_saved_added()
        for token in self.all_special_tokens:
            if not self._has_token(token):
                self._add_to_vocab(token, True)
                self._added_tokens[token] = True
        self._reindex()

    def _restore_saved_added(self) -> None:
        """Add the saved added tokens (``added_tokens_decoder``) the vocabulary lacks, at their saved ids."""
        for index, (token, special) in sorted(self._saved_added.items()):
            if not self._has_token(token):
                got = self._add_to_vocab(token, special)
                if got != index:
                    raise ValueError(
                        f"the saved added token {token!r} has id {index}, but this vocabulary gives it {got}; "
                        "the tokenizer files do not belong together (re-save the tokenizer with save_pretrained)")
            elif self._token_to_id(token) != index:
                raise ValueError(f"the saved added token {token!r} has id {index}, but the vocabulary has it at "
                                 f"{self._token_to_id(token)}; the tokenizer files do not belong together")
            if index >= self._base_vocab_size() or special:
                self._added_tokens.setdefault(token, special)
        self._saved_added = {}

    def _reindex(self) -> None:
        """Recompute the ids of the special and added tokens (after the vocabulary or a special token changed)."""
        tokens = [*self.all_special_tokens, *(t for t in self._added_tokens if t not in self.all_special_tokens)]
        self._special_ids = {tok: self._token_to_id(tok) for tok in tokens}
        self.pad_token_type_id = 0
        special = set(self.all_special_tokens) | {t for t, flag in self._added_tokens.items() if flag}
        self._all_special_ids_set = frozenset(self._special_ids[t] for t in special)
        self._on_tokens_changed()

    def _on_tokens_changed(self) -> None:
        """Hook for a kind that caches what depends on the special/added tokens (e.g. a pattern that finds them)."""

    def _base_vocab_size(self) -> int:
        """Ids below this come from the vocabulary file's model (not added); kinds override."""
        return self.vocab_size

    def _has_token(self, token: str) -> bool:
        """Whether ``token`` is in the vocabulary (kinds override with a faster look-up)."""
        return token in self.get_vocab()

    def _add_to_vocab(self, token: str, special: bool) -> int:  # noqa: ARG002 (kinds use ``special``)
        """Register ``token`` as an added token (matched whole in a text): a token the vocabulary lacks gets the
        next id, one it has keeps its id; returns the id. Kinds that can grow their vocabulary override."""
        raise NotImplementedError(f"{type(self).__name__} cannot add tokens to its vocabulary")

    def _set_special(self, name: str, value: Any) -> None:
        value = _check_token(name, value)
        if value is not None and not self._has_token(value):
            raise ValueError(f"{name}={value!r} is not in the vocabulary; add it with "
                             f"add_special_tokens({{{name!r}: {value!r}}})")
        self._specials[name] = value
        self._reindex()

    def __len__(self) -> int:
        return self.vocab_size

    @property
    def special_tokens_map(self) -> dict[str, str]:
        return {name: self._specials[name] for name in SPECIAL_ORDER if self._specials[name] is not None}

    @property
    def extra_special_tokens(self) -> list[str]:
        """Special tokens beyond the named ones (transformers' ``extra_special_tokens``)."""
        return list(self._extra_special)

    @extra_special_tokens.setter
    def extra_special_tokens(self, tokens: Sequence[Any]) -> None:
        tokens = [_check_token("extra_special_tokens", t) for t in tokens]
        missing = [t for t in tokens if not self._has_token(t)]
        if missing:
            raise ValueError(f"extra_special_tokens {missing} are not in the vocabulary; add them with "
                             f"add_special_tokens({{'extra_special_tokens': {missing!r}}})")
        self._extra_special = tokens
        self._reindex()

    @property
    def all_special_tokens(self) -> list[str]:
        out: list[str] = []
        for token in (*(self._specials[name] for name in SPECIAL_ORDER), *self._extra_special):
            if token is not None and token not in out:
                out.append(token)
        return out

    @property
    def added_tokens_encoder(self) -> dict[str, int]:
        """Token -> id of the special and added tokens (matched whole in a text before the model sees it),
        sorted by id."""
        return dict(sorted(self._special_ids.items(), key=lambda kv: kv[1]))

    @property
    def added_tokens_decoder(self) -> dict[int, Any]:
        """Id -> ``tokenizers.AddedToken`` of the special and added tokens (what transformers returns)."""
        from tokenizers import AddedToken

        return {i: AddedToken(t, **self._added_token_flags(t)) for t, i in self.added_tokens_encoder.items()}

    def _added_token_flags(self, token: str) -> dict[str, bool]:
        special = token in self.all_special_tokens or self._added_tokens.get(token, False)
        return {"lstrip": self.mask_lstrip and token == self.mask_token, "rstrip": False, "single_word": False,
                "normalized": False, "special": special}

    def get_added_vocab(self) -> dict[str, int]:
        """Token -> id of the tokens added past the vocabulary file's model (transformers' ``get_added_vocab``)."""
        return {t: i for t, i in self.added_tokens_encoder.items() if i >= self._base_vocab_size()}

    def add_tokens(self, new_tokens: Any, special_tokens: bool = False) -> int:
        """Add tokens (a str, an ``AddedToken`` or a list of them) the vocabulary lacks, at the next ids; they are
        matched whole in a text before the model sees it. Returns how many were added (resize the model's
        embeddings to ``len(tokenizer)`` after). ``special_tokens=True`` (or an ``AddedToken`` with
        ``special=True``) makes them special: skipped by ``decode(skip_special_tokens=True)``. A token the
        vocabulary already has keeps its id and counts as added when it was not an added token yet (as in
        transformers)."""
        if isinstance(new_tokens, (str, Mapping)) or hasattr(new_tokens, "content"):
            new_tokens = [new_tokens]
        if not isinstance(new_tokens, (list, tuple)):
            raise TypeError("new_tokens must be a str, an AddedToken or a list of them, got "
                            f"{type(new_tokens).__name__}")
        added = 0
        for value in new_tokens:
            token = _check_token("new_tokens", value)
            special = token_is_special(value, special_tokens)
            if token in self._special_ids:  # already an added or special token
                continue
            self._add_to_vocab(token, special)
            self._added_tokens[token] = special
            added += 1
        self._reindex()
        return added

    def add_special_tokens(self, special_tokens_dict: Mapping[str, Any],
                           replace_extra_special_tokens: bool = True) -> int:
        """Set named special tokens (``{"eos_token": "<eos>", "pad_token": ...}``) and extra ones
        (``"extra_special_tokens"`` or its older name ``"additional_special_tokens"``: a list), adding those the
        vocabulary lacks at the next ids. Extra tokens replace the current ones unless
        ``replace_extra_special_tokens=False``. Returns how many tokens were added to the vocabulary."""
        if not isinstance(special_tokens_dict, Mapping):
            raise TypeError("add_special_tokens takes a dict such as {'eos_token': '<eos>'}")
        known = (*SPECIAL_ORDER, "extra_special_tokens", "additional_special_tokens")
        unknown = [k for k in special_tokens_dict if k not in known]
        if unknown:
            raise ValueError(f"add_special_tokens got unknown keys {unknown}; valid keys: {list(known)}")
        added = 0
        for key, value in special_tokens_dict.items():
            values = value if key in ("extra_special_tokens", "additional_special_tokens") else [value]
            if not isinstance(values, (list, tuple)):
                raise TypeError(f"{key} must be a list of tokens, got {type(values).__name__}")
            tokens = [_check_token(key, v) for v in values if v is not None]
            for token in tokens:
                if not self._has_token(token):
                    self._add_to_vocab(token, True)
                    added += 1
                    self._added_tokens[token] = True
            if key in SPECIAL_ORDER:
                if not tokens and key in REQUIRED_SPECIALS:
                    raise ValueError(f"{key} cannot be None")
                self._specials[key] = tokens[0] if tokens else None
            elif replace_extra_special_tokens:
                self._extra_special = tokens
            else:
                self._extra_special += [t for t in tokens if t not in self._extra_special]
        self._reindex()
        return added

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
        specials = {self._id_to_token(i) for i in self._all_special_ids_set}
        return _join_runs(tokens, specials.__contains__, self._decode_tokens, str, skip=None)

    def decode(
        self,
        token_ids: Any,
        skip_special_tokens: bool = False,
        clean_up_tokenization_spaces: bool | None = None,
    ) -> str:
        """Text of ``token_ids`` (a list of ints or a 1-d tensor)."""
        ids = self._check_ids(token_ids)
        out = _join_runs(ids, self._all_special_ids_set.__contains__, self._decode_ids, self._id_to_token,
                         skip=self._all_special_ids_set.__contains__ if skip_special_tokens else None)
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
        padding_side: str | None = None,
    ) -> BatchEncoding:
        """Encode a text, a pair, or a batch of either (a list of texts, or of ``(text, text_pair)`` tuples),
        like transformers' tokenizers.

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

        ``padding_side`` ("right"/"left") overrides the tokenizer's for this call; the tokenizer's
        ``truncation_side`` decides which end truncation cuts.  ``pad_to_multiple_of`` with truncation and
        padding needs a ``max_length`` that is a multiple of it (else rows would come out longer than
        ``max_length``): ``ValueError``, as transformers raises.
        """
        pad_strategy = padding_strategy(padding)
        if padding_side is not None:
            check_side("padding_side", padding_side)
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
        if (trunc_strategy != "do_not_truncate" and pad_strategy != "do_not_pad" and pad_to_multiple_of
                and max_length < _NO_LIMIT and max_length % pad_to_multiple_of):
            below = max_length // pad_to_multiple_of * pad_to_multiple_of
            raise ValueError(
                f"truncation to max_length={max_length} and padding to a multiple of pad_to_multiple_of="
                f"{pad_to_multiple_of} conflict (rows could come out longer than max_length); pass a max_length "
                f"that is a multiple of {pad_to_multiple_of} (e.g. {below or pad_to_multiple_of} or "
                f"{below + pad_to_multiple_of})")

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
            padding_side=padding_side,
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
        side = check_side("truncation_side", self.truncation_side)
        return [self._assemble(ra, rb, add_special_tokens)
                for ra, rb in truncate(a, b, strategy, max_length, stride, overflow, n_special,
                                       self.pair_truncation, side)]

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
                return_special_tokens_mask: bool, return_offsets_mapping: bool, return_length: bool,
                padding_side: str | None = None) -> BatchEncoding:
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
        left = check_side("padding_side", padding_side or self.padding_side) == "left"
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
        padding_side: str | None = None,
    ) -> BatchEncoding:
        """Pad a list of encodings (dicts of lists) or a dict of lists of rows to one length (``padding_side``
        overrides the tokenizer's for this call)."""
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
        left = check_side("padding_side", padding_side or self.padding_side) == "left"
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
        added_tokens_decoder = {str(i): {"content": t, **dict(sorted(self._added_token_flags(t).items()))}
                                for t, i in self.added_tokens_encoder.items()}
        return {
            "tokenizer_class": self.tokenizer_class,
            **self._kind_options(),
            "unk_token": self.unk_token,
            "sep_token": self.sep_token,
            "pad_token": self.pad_token,
            "cls_token": self.cls_token,
            "mask_token": self.mask_token,
            "bos_token": self.bos_token,
            "eos_token": self.eos_token,
            "extra_special_tokens": self.extra_special_tokens,
            "model_max_length": self.model_max_length,
            "clean_up_tokenization_spaces": self.clean_up_tokenization_spaces,
            "padding_side": self.padding_side,
            "truncation_side": self.truncation_side,
            "model_input_names": list(self.model_input_names),
            "added_tokens_decoder": added_tokens_decoder,
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
        config = {k: v for k, v in self._config_dict().items() if k not in _NOT_IDS}
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
        if "additional_special_tokens" in kwargs:  # transformers 4's name
            kwargs["extra_special_tokens"] = kwargs.pop("additional_special_tokens")
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
            extra = config.get("extra_special_tokens", config.get("additional_special_tokens"))
            if isinstance(extra, Mapping):  # transformers 5 may write {"name": token} for named extra tokens
                extra = list(extra.values())
            if extra:
                options["extra_special_tokens"] = [token_content(t) for t in extra]
            if isinstance(config.get("added_tokens_decoder"), Mapping):
                options["added_tokens_decoder"] = config["added_tokens_decoder"]
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


def _join_runs(items: Sequence[Any], is_special, decode_run, special_text, skip) -> str:
    """Decode runs of ordinary items with ``decode_run``; special items stand as their own words (``skip``: a
    predicate for the ones to leave out, or None)."""
    out = ""
    run: list[Any] = []
    prev_special = False
    for item in items:
        if is_special(item):
            if skip is not None and skip(item):
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


def _check_token(name: str, value: Any) -> str | None:
    """A token given for ``name`` (a str, a dict with ``content`` or an ``AddedToken``); None only for the
    named special tokens that may be absent."""
    value = token_content(value)
    if value is None:
        if name in REQUIRED_SPECIALS or name not in SPECIAL_ORDER:
            raise ValueError(f"{name} cannot be None")
        return None
    if not value:
        raise ValueError(f"{name} must be a non-empty string, got {value!r}")
    return value


def _read_added_tokens(table: Mapping[Any, Any] | None) -> dict[int, tuple[str, bool]]:
    """A saved ``added_tokens_decoder`` ({id: token or {"content":..., "special":...}}) -> {id: (token, special)}."""
    out: dict[int, tuple[str, bool]] = {}
    for key, value in (table or {}).items():
        try:
            index = int(key)
        except (TypeError, ValueError):
            raise ValueError(f"added_tokens_decoder has a key {key!r} that is not an id") from None
        out[index] = (_check_token("added_tokens_decoder", value), token_is_special(value, True))
    return out


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
